# A cluster link from a primary cluster to a standby one, created on the standby (links are
# owned by their destination) by an SSM command on one of its brokers: the admin API stays
# private to the cluster's network.

locals {
  script = templatefile("${path.module}/../../templates/link.sh.tftpl", {
    name           = var.name
    source         = var.source_bootstrap
    topics         = var.topics
    groups         = var.groups
    offset_sync_ms = var.offset_sync_ms
    admin          = var.standby_admin
  })
}

resource "aws_ssm_document" "link" {
  name            = "strata-link-${var.name}-${substr(sha256(local.script), 0, 8)}"
  document_type   = "Command"
  document_format = "JSON"
  content = jsonencode({
    schemaVersion = "2.2"
    description   = "Create Strata cluster link ${var.name} on the standby cluster"
    mainSteps = [{
      action = "aws:runShellScript"
      name   = "createLink"
      inputs = {
        runCommand       = split("\n", local.script)
        timeoutSeconds   = 900
        workingDirectory = "/tmp"
      }
    }]
  })
  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_ssm_association" "link" {
  name             = aws_ssm_document.link.name
  association_name = "strata-link-${var.name}"

  # Again every half hour: a link the first run could not create (the primary not reachable
  # yet) is created then; the script does nothing once the link exists.
  schedule_expression = "rate(30 minutes)"

  targets {
    key    = "InstanceIds"
    values = [var.standby_instance_id]
  }
}
