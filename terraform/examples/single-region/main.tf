# One Strata cluster in one region, in an existing VPC with three private subnets.

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
  region = var.region
}

module "cluster" {
  source        = "../../modules/strata-cluster"
  name          = var.name
  vpc_id        = var.vpc_id
  subnet_ids    = var.subnet_ids
  client_cidrs  = var.client_cidrs
  admin_cidrs   = var.admin_cidrs
  binary_url    = var.binary_url
  binary_sha256 = var.binary_sha256
  broker_settings = {
    "log.retention.ms"       = "-1"
    "log.local.retention.ms" = "3600000"
  }
}
