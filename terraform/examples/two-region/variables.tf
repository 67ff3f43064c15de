variable "name" {
  description = "Prefix of both clusters' names."
  type        = string
  default     = "events"
}

variable "primary_region" {
  description = "Region of the primary cluster."
  type        = string
  default     = "us-east-1"
}

variable "standby_region" {
  description = "Region of the standby cluster."
  type        = string
  default     = "us-west-2"
}

variable "primary_vpc_id" {
  description = "VPC of the primary cluster."
  type        = string
}

variable "primary_vpc_cidr" {
  description = "CIDR block of the primary VPC (the standby's brokers read from it)."
  type        = string
}

variable "primary_subnet_ids" {
  description = "Three private subnets of the primary VPC, one per availability zone."
  type        = list(string)
}

variable "standby_vpc_id" {
  description = "VPC of the standby cluster."
  type        = string
}

variable "standby_vpc_cidr" {
  description = "CIDR block of the standby VPC (allowed to the primary's Kafka port)."
  type        = string
}

variable "standby_subnet_ids" {
  description = "Three private subnets of the standby VPC, one per availability zone."
  type        = list(string)
}

variable "client_cidrs" {
  description = "CIDR blocks of the Kafka clients (of either region: they move to the standby at failover)."
  type        = list(string)
}

variable "admin_cidrs" {
  description = "CIDR blocks of the operators' admin API access (private)."
  type        = list(string)
  default     = []
}

variable "primary_binary_url" {
  description = "s3:// or https:// URL of the strata binary, as the primary region's instances fetch it."
  type        = string
}

variable "standby_binary_url" {
  description = "s3:// or https:// URL of the strata binary, as the standby region's instances fetch it."
  type        = string
}

variable "binary_sha256" {
  description = "SHA-256 of the strata binary."
  type        = string
}

variable "mirrored_topics" {
  description = "Regular expression of the topics the standby mirrors (null: every topic)."
  type        = string
  default     = null
}
