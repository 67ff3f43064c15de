output "configs" {
  description = "Each node's strata.toml, by node id."
  value       = local.configs
}

output "units" {
  description = "Each node's systemd unit, by node id."
  value       = local.units
}

output "volume_scripts" {
  description = "Each node's data volume script (run before every start of its unit), by node id."
  value       = local.volume_scripts
}

output "user_data" {
  description = "Each node's instance user data, by node id."
  value       = local.user_data
}

output "voters" {
  description = "controller.quorum.voters of the cluster."
  value       = local.voters
}

output "controller_port" {
  description = "The controllers' raft listener port."
  value       = var.controller_port
}

output "admin_port" {
  description = "Every node's admin HTTP API port."
  value       = var.admin_port
}
