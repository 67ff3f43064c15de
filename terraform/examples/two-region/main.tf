# Two Strata clusters in two regions: the primary serves clients, the standby mirrors its
# topics and consumer group offsets through a cluster link, for disaster recovery. The two
# VPCs must reach each other privately (VPC peering or a transit gateway): the standby's
# brokers read the primary's Kafka port.

terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.40"
    }
  }
}

provider "aws" {
  alias  = "primary"
  region = var.primary_region
}

provider "aws" {
  alias  = "standby"
  region = var.standby_region
}

module "primary" {
  source     = "../../modules/strata-cluster"
  providers  = { aws = aws.primary }
  name       = "${var.name}-primary"
  vpc_id     = var.primary_vpc_id
  subnet_ids = var.primary_subnet_ids
  # Its clients, and the standby's brokers, which read it.
  client_cidrs = concat(var.client_cidrs, [var.standby_vpc_cidr])
  admin_cidrs  = var.admin_cidrs
  # Failing back, the primary follows the standby (link `back`), and the runbook's commands
  # call both clusters' admin APIs.
  egress_kafka_cidrs = [var.standby_vpc_cidr]
  peer_admin_cidrs   = [var.standby_vpc_cidr]
  binary_url         = var.primary_binary_url
  binary_sha256      = var.binary_sha256
}

module "standby" {
  source     = "../../modules/strata-cluster"
  providers  = { aws = aws.standby }
  name       = "${var.name}-standby"
  vpc_id     = var.standby_vpc_id
  subnet_ids = var.standby_subnet_ids
  # Its clients, and the primary's brokers, which read it after a fail-back.
  client_cidrs       = concat(var.client_cidrs, [var.primary_vpc_cidr])
  admin_cidrs        = var.admin_cidrs
  egress_kafka_cidrs = [var.primary_vpc_cidr]
  peer_admin_cidrs   = [var.primary_vpc_cidr]
  binary_url         = var.standby_binary_url
  binary_sha256      = var.binary_sha256
}

module "link" {
  source              = "../../modules/strata-link"
  providers           = { aws = aws.standby }
  name                = "dr"
  source_bootstrap    = module.primary.bootstrap_servers
  standby_instance_id = values(module.standby.broker_instance_ids)[0]
  topics              = var.mirrored_topics
}
