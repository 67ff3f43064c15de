output "bootstrap_servers" {
  description = "Kafka bootstrap addresses of the brokers (bootstrap.servers)."
  value       = join(",", [for k, n in local.brokers : "${aws_network_interface.node[k].private_ip}:${var.kafka_port}"])
}

output "admin_endpoints" {
  description = "Each node's admin HTTP API (metrics, health, links), by node id."
  value       = { for k, n in local.nodes : k => "http://${aws_network_interface.node[k].private_ip}:${module.config.admin_port}" }
}

output "controller_quorum_voters" {
  description = "controller.quorum.voters of the cluster."
  value       = module.config.voters
}

output "bucket" {
  description = "The tiered storage bucket's name."
  value       = aws_s3_bucket.tiered.id
}

output "remote_storage_url" {
  description = "Where the brokers tier segments (remote.log.storage.url)."
  value       = "s3://${aws_s3_bucket.tiered.id}/${var.bucket_prefix}"
}

output "security_group_id" {
  description = "The nodes' security group (add rules for more clients)."
  value       = aws_security_group.nodes.id
}

output "role_name" {
  description = "The nodes' IAM role's name (to attach more policies)."
  value       = aws_iam_role.node.name
}

output "role_arn" {
  description = "The nodes' IAM role."
  value       = aws_iam_role.node.arn
}

output "broker_instance_ids" {
  description = "Instance ids of the brokers, by node id."
  value       = { for k, n in local.brokers : k => aws_instance.node[k].id }
}

output "instance_ids" {
  description = "Instance ids of every node, by node id."
  value       = { for k, n in local.nodes : k => aws_instance.node[k].id }
}
