output "bootstrap_servers" {
  description = "bootstrap.servers for clients."
  value       = module.cluster.bootstrap_servers
}

output "admin_endpoints" {
  description = "Each node's admin API."
  value       = module.cluster.admin_endpoints
}

output "bucket" {
  description = "The tiered storage bucket."
  value       = module.cluster.bucket
}
