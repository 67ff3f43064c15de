# A Strata cluster on EC2 across three availability zones: controller voters and brokers (or
# three combined nodes), each with a fixed network interface (so the voters' addresses are
# known before any instance starts, and survive its replacement), a data volume, and user data
# rendered by strata-node-config from terraform/templates.

data "aws_subnet" "zone" {
  count = 3
  id    = var.subnet_ids[count.index]
}

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_ssm_parameter" "ami" {
  name = var.ami_ssm_parameter
}

locals {
  specs = var.combined ? [
    for i in range(3) : { id = i + 1, role = "combined", index = i }
    ] : concat(
    [for i in range(var.controller_count) : { id = i + 1, role = "controller", index = i }],
    [for i in range(var.broker_count) : { id = 101 + i, role = "broker", index = i }],
  )
  nodes = {
    for n in local.specs : tostring(n.id) => merge(n, {
      subnet_id = var.subnet_ids[n.index % 3]
      zone      = data.aws_subnet.zone[n.index % 3].availability_zone
      # Brokers on instance store keep their hot tier on the instance's own NVMe; every node
      # with the controller role gets an EBS volume, which keeps the metadata log through a
      # stop or a replacement.
      instance_store = n.role == "broker" && var.broker_storage == "instance-store"
    })
  }
  ebs_nodes = { for k, n in local.nodes : k => n if !n.instance_store }
  brokers   = { for k, n in local.nodes : k => n if n.role != "controller" }
  bucket    = coalesce(var.bucket_name, "${var.name}-strata-tiered-${data.aws_caller_identity.current.account_id}")
  tags      = merge(var.tags, { "strata:cluster" = var.name })
  # The binary's object, when instances fetch it from S3: the role may read it.
  binary_object = startswith(var.binary_url, "s3://") ? trimprefix(var.binary_url, "s3://") : null
}

module "config" {
  source = "../strata-node-config"
  nodes = [
    for k, n in local.nodes : {
      id      = n.id
      role    = n.role
      address = aws_network_interface.node[k].private_ip
      rack    = n.zone
      volume  = n.instance_store ? "instance-store" : aws_ebs_volume.data[k].id
    }
  ]
  region              = data.aws_region.current.name
  remote_storage_url  = "s3://${local.bucket}/${var.bucket_prefix}"
  binary_url          = var.binary_url
  binary_sha256       = var.binary_sha256
  kafka_port          = var.kafka_port
  broker_settings     = var.broker_settings
  controller_settings = var.controller_settings
}
