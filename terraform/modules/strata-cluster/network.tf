# Who may reach the nodes: clients the Kafka port, nodes each other (replication, the
# controller quorum, the admin API's fan-out), operators the admin API, a linked cluster's
# nodes the admin API. Outbound: the other nodes, HTTPS (S3, SSM, the binary), and a linked
# cluster's Kafka port and admin API.

resource "aws_security_group" "nodes" {
  name_prefix = "${var.name}-strata-"
  description = "Strata cluster ${var.name}: brokers and controllers"
  vpc_id      = var.vpc_id
  tags        = local.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "kafka_clients" {
  for_each          = toset(var.client_cidrs)
  security_group_id = aws_security_group.nodes.id
  description       = "Kafka clients"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = var.kafka_port
  to_port           = var.kafka_port
}

resource "aws_vpc_security_group_ingress_rule" "kafka_nodes" {
  security_group_id            = aws_security_group.nodes.id
  description                  = "Replication between brokers"
  referenced_security_group_id = aws_security_group.nodes.id
  ip_protocol                  = "tcp"
  from_port                    = var.kafka_port
  to_port                      = var.kafka_port
}

resource "aws_vpc_security_group_ingress_rule" "controllers" {
  security_group_id            = aws_security_group.nodes.id
  description                  = "Controller quorum, between nodes only"
  referenced_security_group_id = aws_security_group.nodes.id
  ip_protocol                  = "tcp"
  from_port                    = module.config.controller_port
  to_port                      = module.config.controller_port
}

resource "aws_vpc_security_group_ingress_rule" "admin_nodes" {
  security_group_id            = aws_security_group.nodes.id
  description                  = "Admin API fan-out between nodes"
  referenced_security_group_id = aws_security_group.nodes.id
  ip_protocol                  = "tcp"
  from_port                    = module.config.admin_port
  to_port                      = module.config.admin_port
}

resource "aws_vpc_security_group_ingress_rule" "admin_operators" {
  for_each          = toset(var.admin_cidrs)
  security_group_id = aws_security_group.nodes.id
  description       = "Admin API and metrics from operators (private)"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = module.config.admin_port
  to_port           = module.config.admin_port
}

resource "aws_vpc_security_group_ingress_rule" "admin_peers" {
  for_each          = toset(var.peer_admin_cidrs)
  security_group_id = aws_security_group.nodes.id
  description       = "Admin API from the nodes of a linked cluster"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = module.config.admin_port
  to_port           = module.config.admin_port
}

resource "aws_vpc_security_group_egress_rule" "admin_peers" {
  for_each          = toset(var.peer_admin_cidrs)
  security_group_id = aws_security_group.nodes.id
  description       = "Admin API of a linked cluster's nodes"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = module.config.admin_port
  to_port           = module.config.admin_port
}

resource "aws_vpc_security_group_egress_rule" "nodes" {
  security_group_id            = aws_security_group.nodes.id
  description                  = "Other nodes of the cluster"
  referenced_security_group_id = aws_security_group.nodes.id
  ip_protocol                  = "tcp"
  from_port                    = 0
  to_port                      = 65535
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.nodes.id
  description       = "HTTPS: S3 (tiered storage), SSM, the strata binary"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "link_sources" {
  for_each          = toset(var.egress_kafka_cidrs)
  security_group_id = aws_security_group.nodes.id
  description       = "Kafka port of a cluster link's source cluster"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = var.kafka_port
  to_port           = var.kafka_port
}

resource "aws_network_interface" "node" {
  for_each        = local.nodes
  subnet_id       = each.value.subnet_id
  security_groups = [aws_security_group.nodes.id]
  description     = "Strata ${var.name} node ${each.key} (${each.value.role})"
  tags            = merge(local.tags, { Name = "${var.name}-strata-${each.key}" })
}
