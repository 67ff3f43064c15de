output "script" {
  description = "The command SSM runs on the standby broker to create the link."
  value       = local.script
}

output "failover_runbook" {
  description = "Commands, run on a standby broker (SSM session), to watch the link, fail over to the standby, and fail back."
  value = [
    "strata link status ${var.name} --admin ${var.standby_admin}",
    "strata mirror failover --all --link ${var.name} --admin ${var.standby_admin}",
    "strata link create back --source <standby bootstrap> --admin <primary admin>",
    "strata mirror truncate-and-restore --all --link back --admin <primary admin>",
    "strata mirror reverse --link back --admin <primary admin> --peer-admin <standby admin> --peer-link ${var.name}",
  ]
}
