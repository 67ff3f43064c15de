variable "region" {
  description = "AWS region of the cluster."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Cluster name."
  type        = string
  default     = "events"
}

variable "vpc_id" {
  description = "VPC of the cluster."
  type        = string
}

variable "subnet_ids" {
  description = "Three private subnets, one per availability zone."
  type        = list(string)
}

variable "client_cidrs" {
  description = "CIDR blocks of the Kafka clients."
  type        = list(string)
}

variable "admin_cidrs" {
  description = "CIDR blocks of the operators' admin API access (private)."
  type        = list(string)
  default     = []
}

variable "binary_url" {
  description = "s3:// or https:// URL of the strata binary (aarch64 Linux for the default instance types)."
  type        = string
}

variable "binary_sha256" {
  description = "SHA-256 of the strata binary."
  type        = string
}
