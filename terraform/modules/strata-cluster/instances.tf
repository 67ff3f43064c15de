# One instance per node on its own network interface; user data mounts the data volume,
# installs the binary and starts the systemd unit.

resource "aws_instance" "node" {
  for_each             = local.nodes
  ami                  = data.aws_ssm_parameter.ami.insecure_value
  instance_type        = each.value.role == "controller" ? var.controller_instance_type : var.broker_instance_type
  iam_instance_profile = aws_iam_instance_profile.node.name
  user_data_base64     = base64gzip(module.config.user_data[each.key])
  monitoring           = true
  ebs_optimized        = true

  network_interface {
    network_interface_id = aws_network_interface.node[each.key].id
    device_index         = 0
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = 20
    encrypted   = true
    kms_key_id  = var.kms_key_arn
  }

  tags = merge(local.tags, {
    Name            = "${var.name}-strata-${each.key}"
    "strata:node"   = each.key
    "strata:role"   = each.value.role
    "strata:broker" = tostring(each.value.role != "controller")
  })

  lifecycle {
    # A new AMI, config, instance type or root volume would restart or replace every node at
    # once: they are rolled out node by node instead (terraform apply -replace, README).
    ignore_changes = [ami, user_data_base64, instance_type, root_block_device]
  }

  # The first boot downloads the binary: its role and its way out must exist by then.
  depends_on = [
    aws_iam_role_policy.tiered,
    aws_iam_role_policy_attachment.ssm,
    aws_vpc_security_group_egress_rule.https,
  ]
}

resource "aws_volume_attachment" "data" {
  for_each                       = local.ebs_nodes
  device_name                    = "/dev/sdf"
  volume_id                      = aws_ebs_volume.data[each.key].id
  instance_id                    = aws_instance.node[each.key].id
  stop_instance_before_detaching = true
}
