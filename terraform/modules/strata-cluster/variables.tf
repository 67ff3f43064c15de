variable "name" {
  description = "Cluster name: prefixes every resource and tags it (strata:cluster)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,28}$", var.name))
    error_message = "name is 2 to 29 lowercase letters, digits and dashes (IAM name prefixes are short)."
  }
}

variable "vpc_id" {
  description = "VPC the nodes run in."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets, one per availability zone (three): nodes are spread across them and broker.rack is the zone."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) == 3
    error_message = "Give three subnets, one in each of three availability zones."
  }
}

variable "client_cidrs" {
  description = "CIDR blocks of the clients allowed to reach the Kafka port."
  type        = list(string)
}

variable "admin_cidrs" {
  description = "CIDR blocks allowed to reach the admin HTTP API (metrics, health, links); keep them private."
  type        = list(string)
  default     = []
}

variable "peer_admin_cidrs" {
  description = "CIDR blocks of another cluster's nodes whose admin API this one calls and answers (the two clusters of a link, for failing back and switching back)."
  type        = list(string)
  default     = []
}

variable "egress_kafka_cidrs" {
  description = "CIDR blocks of other clusters' brokers this cluster reads from (the source of a cluster link)."
  type        = list(string)
  default     = []
}

variable "combined" {
  description = "Three nodes that are both brokers and controller voters, instead of separate controllers and brokers."
  type        = bool
  default     = false
}

variable "controller_count" {
  description = "Controller voters (3 or 5), unless combined."
  type        = number
  default     = 3

  validation {
    condition     = contains([3, 5], var.controller_count)
    error_message = "controller_count is 3 or 5."
  }
}

variable "broker_count" {
  description = "Brokers, unless combined (at least the replication factor)."
  type        = number
  default     = 3

  validation {
    condition     = var.broker_count >= 3
    error_message = "broker_count is at least 3, the replication factor."
  }
}

variable "controller_instance_type" {
  description = "EC2 instance type of the controllers."
  type        = string
  default     = "m7g.large"
}

variable "broker_instance_type" {
  description = "EC2 instance type of the brokers (and of combined nodes); an i-family type for local NVMe."
  type        = string
  default     = "im4gn.xlarge"
}

variable "ami_ssm_parameter" {
  description = "SSM parameter naming the AMI (Amazon Linux 2023 by default; the binary's architecture must match the instance types)."
  type        = string
  default     = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
}

variable "broker_storage" {
  description = "The brokers' hot tier: instance-store (the instance type's local NVMe) or gp3 (an EBS volume per broker that outlives the instance)."
  type        = string
  default     = "instance-store"

  validation {
    condition     = contains(["instance-store", "gp3"], var.broker_storage)
    error_message = "broker_storage is instance-store or gp3."
  }
}

variable "broker_volume_gib" {
  description = "Size of each broker's gp3 volume (when broker_storage is gp3)."
  type        = number
  default     = 500
}

variable "broker_volume_iops" {
  description = "Provisioned IOPS of each broker's gp3 volume."
  type        = number
  default     = 6000
}

variable "broker_volume_throughput" {
  description = "Provisioned throughput (MiB/s) of each broker's gp3 volume."
  type        = number
  default     = 500
}

variable "controller_volume_gib" {
  description = "Size of each controller's gp3 volume (the metadata log and snapshots)."
  type        = number
  default     = 50
}

variable "kms_key_arn" {
  description = "KMS key for the bucket and the volumes (null: AWS-managed keys)."
  type        = string
  default     = null
}

variable "bucket_name" {
  description = "Name of the tiered storage bucket (null: <name>-strata-tiered-<account id>)."
  type        = string
  default     = null
}

variable "bucket_prefix" {
  description = "Prefix of this cluster's objects in the bucket; the nodes' role may read and write nothing else."
  type        = string
  default     = "strata"

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*$", var.bucket_prefix))
    error_message = "bucket_prefix is one or more path segments, without a leading or trailing slash."
  }
}

variable "bucket_versioning" {
  description = "Keep noncurrent object versions (recovers objects deleted by mistake)."
  type        = bool
  default     = true
}

variable "noncurrent_version_days" {
  description = "Days a noncurrent object version is kept before it expires."
  type        = number
  default     = 30
}

variable "bucket_access_log_bucket" {
  description = "Bucket receiving the tiered storage bucket's access logs (null: no access logging)."
  type        = string
  default     = null
}

variable "bucket_force_destroy" {
  description = "Let terraform destroy the bucket with its objects (tests and demos only)."
  type        = bool
  default     = false
}

variable "binary_url" {
  description = "Where instances download the strata binary: an s3:// or https:// URL."
  type        = string
}

variable "binary_sha256" {
  description = "SHA-256 of the strata binary; instances refuse any other."
  type        = string
}

variable "broker_settings" {
  description = "More broker settings, by their Kafka names (for example log.retention.ms)."
  type        = map(string)
  default     = {}
}

variable "controller_settings" {
  description = "More settings of controller-only nodes, by their Kafka names."
  type        = map(string)
  default     = {}
}

variable "kafka_port" {
  description = "The brokers' Kafka listener port."
  type        = number
  default     = 9092
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
