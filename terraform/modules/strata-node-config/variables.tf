variable "nodes" {
  description = "Every node of the cluster: its node.id, role (controller, broker, or combined for both), private address, rack (the availability zone) and data volume (an EBS volume id, or instance-store)."
  type = list(object({
    id      = number
    role    = string
    address = string
    rack    = string
    volume  = string
  }))

  validation {
    condition     = alltrue([for n in var.nodes : contains(["controller", "broker", "combined"], n.role)])
    error_message = "Each node's role is controller, broker or combined."
  }

  validation {
    condition     = contains([3, 5], length([for n in var.nodes : n if n.role != "broker"]))
    error_message = "A cluster has 3 or 5 controller voters."
  }

  validation {
    condition     = length(distinct([for n in var.nodes : n.id])) == length(var.nodes)
    error_message = "Node ids are unique."
  }
}

variable "region" {
  description = "AWS region the nodes run in (AWS_REGION of the service, for the S3 client)."
  type        = string
}

variable "remote_storage_url" {
  description = "Where brokers tier closed segments: s3://bucket/prefix."
  type        = string
}

variable "binary_url" {
  description = "Where instances download the strata binary: an s3:// or https:// URL."
  type        = string
}

variable "binary_sha256" {
  description = "SHA-256 of the strata binary at binary_url; instances refuse any other."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.binary_sha256))
    error_message = "binary_sha256 is 64 lowercase hex digits."
  }
}

variable "data_dir" {
  description = "Where each node's data volume is mounted (log.dirs)."
  type        = string
  default     = "/var/lib/strata"
}

variable "kafka_port" {
  description = "The brokers' Kafka listener port."
  type        = number
  default     = 9092
}

variable "controller_port" {
  description = "The controllers' raft listener port."
  type        = number
  default     = 9093
}

variable "admin_port" {
  description = "Every node's admin HTTP API port (metrics, health, links)."
  type        = number
  default     = 9644
}

variable "replication_factor" {
  description = "Replicas of each partition (default.replication.factor, and the internal topics')."
  type        = number
  default     = 3
}

variable "min_insync_replicas" {
  description = "Replicas an acks=all write needs (min.insync.replicas)."
  type        = number
  default     = 2
}

variable "broker_settings" {
  description = "More broker settings (and combined nodes'), by their Kafka names, for example log.retention.ms; they win over the module's defaults."
  type        = map(string)
  default     = {}

  validation {
    condition     = length(setintersection(keys(var.broker_settings), ["node.id", "process.roles", "listeners", "controller.quorum.voters", "log.dirs", "advertised.listeners", "broker.rack"])) == 0
    error_message = "node.id, process.roles, listeners, controller.quorum.voters, log.dirs, advertised.listeners and broker.rack are set by the module."
  }
}

variable "controller_settings" {
  description = "More settings of controller-only nodes, by their Kafka names (for example the admin API's security)."
  type        = map(string)
  default     = {}

  validation {
    condition     = length(setintersection(keys(var.controller_settings), ["node.id", "process.roles", "listeners", "controller.quorum.voters", "log.dirs", "advertised.listeners", "broker.rack"])) == 0
    error_message = "node.id, process.roles, listeners, controller.quorum.voters, log.dirs, advertised.listeners and broker.rack are set by the module."
  }
}
