# The configuration, systemd unit and user data of every node, from the templates in
# terraform/templates: a pure module (no provider), so that tests render exactly what the
# cluster module deploys.

locals {
  templates   = "${path.module}/../../templates"
  controllers = [for n in var.nodes : n if n.role != "broker"]
  roles = {
    controller = "controller"
    broker     = "broker"
    combined   = "broker,controller"
  }
  listeners = {
    controller = "CONTROLLER://0.0.0.0:${var.controller_port},ADMIN://0.0.0.0:${var.admin_port}"
    broker     = "PLAINTEXT://0.0.0.0:${var.kafka_port},ADMIN://0.0.0.0:${var.admin_port}"
    combined   = "PLAINTEXT://0.0.0.0:${var.kafka_port},CONTROLLER://0.0.0.0:${var.controller_port},ADMIN://0.0.0.0:${var.admin_port}"
  }
  broker_defaults = {
    "default.replication.factor"               = tostring(var.replication_factor)
    "min.insync.replicas"                      = tostring(var.min_insync_replicas)
    "offsets.topic.replication.factor"         = tostring(var.replication_factor)
    "transaction.state.log.replication.factor" = tostring(var.replication_factor)
    "transaction.state.log.min.isr"            = tostring(var.min_insync_replicas)
    "remote.log.storage.url"                   = var.remote_storage_url
  }
  voters = join(",", [
    for n in local.controllers : "${n.id}@${n.address}:${var.controller_port}"
  ])

  configs = {
    for n in var.nodes : tostring(n.id) => templatefile("${local.templates}/node.toml.tftpl", {
      node_id    = n.id
      role       = n.role
      roles      = local.roles[n.role]
      broker     = n.role != "controller"
      address    = n.address
      rack       = n.rack
      kafka_port = var.kafka_port
      voters     = local.voters
      data_dir   = var.data_dir
      listeners  = local.listeners[n.role]
      # Quoted flat keys: a setting given twice is one key, and the operator's wins.
      settings = n.role == "controller" ? var.controller_settings : merge(local.broker_defaults, var.broker_settings)
    })
  }

  units = {
    for n in var.nodes : tostring(n.id) => templatefile("${local.templates}/strata.service.tftpl", {
      node_id  = n.id
      data_dir = var.data_dir
      region   = var.region
    })
  }

  volume_scripts = {
    for n in var.nodes : tostring(n.id) => templatefile("${local.templates}/data-volume.sh.tftpl", {
      node_id  = n.id
      data_dir = var.data_dir
      volume   = n.volume
    })
  }

  user_data = {
    for n in var.nodes : tostring(n.id) => templatefile("${local.templates}/user-data.sh.tftpl", {
      node_id       = n.id
      data_dir      = var.data_dir
      binary_url    = var.binary_url
      binary_sha256 = var.binary_sha256
      volume_script = local.volume_scripts[tostring(n.id)]
      config        = local.configs[tostring(n.id)]
      unit          = local.units[tostring(n.id)]
    })
  }
}
