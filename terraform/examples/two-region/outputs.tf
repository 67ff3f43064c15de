output "primary_bootstrap_servers" {
  description = "bootstrap.servers of the primary cluster."
  value       = module.primary.bootstrap_servers
}

output "standby_bootstrap_servers" {
  description = "bootstrap.servers of the standby cluster (clients move here at failover)."
  value       = module.standby.bootstrap_servers
}

output "primary_admin_endpoints" {
  description = "The primary's admin APIs."
  value       = module.primary.admin_endpoints
}

output "standby_admin_endpoints" {
  description = "The standby's admin APIs."
  value       = module.standby.admin_endpoints
}

output "failover_runbook" {
  description = "Commands to watch the link, fail over and fail back (terraform/README.md explains each)."
  value       = module.link.failover_runbook
}
