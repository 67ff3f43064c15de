# The tiered storage bucket: private, encrypted, TLS only, versioned (by default) with expiring
# noncurrent versions; and the EBS data volumes, which outlive their instances.

resource "aws_s3_bucket" "tiered" {
  #checkov:skip=CKV_AWS_144:Disaster recovery is a cluster link to a standby cluster with its own bucket (strata-link), not bucket replication, which would copy objects whose metadata the standby does not have.
  #checkov:skip=CKV2_AWS_62:Nothing consumes object events of the tiered storage bucket.
  #checkov:skip=CKV_AWS_18:Access logging needs a log bucket the operator owns: set bucket_access_log_bucket (aws_s3_bucket_logging below).
  bucket        = local.bucket
  force_destroy = var.bucket_force_destroy
  tags          = local.tags
}

resource "aws_s3_bucket_ownership_controls" "tiered" {
  bucket = aws_s3_bucket.tiered.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "tiered" {
  bucket                  = aws_s3_bucket.tiered.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "tiered" {
  bucket = aws_s3_bucket.tiered.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_versioning" "tiered" {
  bucket = aws_s3_bucket.tiered.id
  versioning_configuration {
    status = var.bucket_versioning ? "Enabled" : "Suspended"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "tiered" {
  bucket = aws_s3_bucket.tiered.id

  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }
    # Deleted segments leave delete markers; once their versions expire, so do they.
    expiration {
      expired_object_delete_marker = true
    }
  }

  depends_on = [aws_s3_bucket_versioning.tiered]
}

resource "aws_s3_bucket_logging" "tiered" {
  count         = var.bucket_access_log_bucket == null ? 0 : 1
  bucket        = aws_s3_bucket.tiered.id
  target_bucket = var.bucket_access_log_bucket
  target_prefix = "${local.bucket}/"
}

data "aws_iam_policy_document" "tiered_bucket" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.tiered.arn,
      "${aws_s3_bucket.tiered.arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "tiered" {
  bucket     = aws_s3_bucket.tiered.id
  policy     = data.aws_iam_policy_document.tiered_bucket.json
  depends_on = [aws_s3_bucket_public_access_block.tiered]
}

resource "aws_ebs_volume" "data" {
  #checkov:skip=CKV_AWS_189:Encrypted always; with kms_key_arn unset the AWS-managed key is used, as the operator chose.
  for_each          = local.ebs_nodes
  availability_zone = each.value.zone
  type              = "gp3"
  size              = each.value.role == "controller" ? var.controller_volume_gib : var.broker_volume_gib
  iops              = each.value.role == "controller" ? 3000 : var.broker_volume_iops
  throughput        = each.value.role == "controller" ? 125 : var.broker_volume_throughput
  encrypted         = true
  kms_key_id        = var.kms_key_arn
  tags              = merge(local.tags, { Name = "${var.name}-strata-${each.key}-data" })
}
