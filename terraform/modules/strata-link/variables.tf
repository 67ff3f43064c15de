variable "name" {
  description = "Name of the cluster link, on the standby cluster."
  type        = string
  default     = "dr"
}

variable "source_bootstrap" {
  description = "Kafka bootstrap addresses of the primary (source) cluster, reachable from the standby's brokers."
  type        = string
}

variable "standby_instance_id" {
  description = "A broker instance of the standby cluster: SSM runs `strata link create` there, against its own admin API."
  type        = string
}

variable "topics" {
  description = "Regular expression of the topics to mirror (null: every topic)."
  type        = string
  default     = null
}

variable "groups" {
  description = "Regular expression of the consumer groups whose offsets are mirrored."
  type        = string
  default     = ".*"
}

variable "offset_sync_ms" {
  description = "How often consumer group offsets are copied to the standby."
  type        = number
  default     = 1000
}

variable "standby_admin" {
  description = "The standby node's admin API as the link command reaches it on the instance."
  type        = string
  default     = "127.0.0.1:9644"
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
