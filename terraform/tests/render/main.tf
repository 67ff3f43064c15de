# Renders the node configs and user data the cluster module deploys, for the test that runs
# them through `strata config check` (tests/terraform.rs). No provider: it applies offline.

variable "shape" {
  description = "combined: three nodes with both roles; split: three controllers and three brokers."
  type        = string
  default     = "combined"
}

locals {
  zones = ["us-east-1a", "us-east-1b", "us-east-1c"]
  nodes = var.shape == "combined" ? [
    for i in range(3) : {
      id      = i + 1
      role    = "combined"
      address = "10.0.${i + 1}.10"
      rack    = local.zones[i]
      volume  = "vol-0123456789abcdef${i}"
    }
    ] : concat([
      for i in range(3) : {
        id      = i + 1
        role    = "controller"
        address = "10.0.${i + 1}.10"
        rack    = local.zones[i]
        volume  = "vol-0aaaaaaaaaaaaaaa${i}"
      }
      ], [
      for i in range(3) : {
        id      = 101 + i
        role    = "broker"
        address = "10.0.${i + 1}.20"
        rack    = local.zones[i]
        volume  = "instance-store"
      }
  ])
}

module "nodes" {
  source             = "../../modules/strata-node-config"
  nodes              = local.nodes
  region             = "us-east-1"
  remote_storage_url = "s3://strata-test-tiered/strata/test"
  binary_url         = "s3://strata-releases/strata-x86_64-linux"
  binary_sha256      = "0000000000000000000000000000000000000000000000000000000000000000"
  broker_settings = {
    "log.retention.ms" = "604800000"
    "num.partitions"   = "6"
  }
}

output "configs" {
  description = "Each node's strata.toml, by node id."
  value       = module.nodes.configs
}

output "volume_scripts" {
  description = "Each node's data volume script, by node id."
  value       = module.nodes.volume_scripts
}

output "user_data" {
  description = "Each node's user data, by node id."
  value       = module.nodes.user_data
}

output "link_script" {
  description = "The command strata-link has SSM run on a standby broker."
  value = templatefile("../../templates/link.sh.tftpl", {
    name           = "dr"
    source         = "10.1.1.20:9092,10.1.2.20:9092,10.1.3.20:9092"
    topics         = "orders|payments"
    groups         = ".*"
    offset_sync_ms = 1000
    admin          = "127.0.0.1:9644"
  })
}
