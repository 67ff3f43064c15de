# The nodes' role: the objects under the bucket's prefix (and the binary, when it is in S3),
# plus AWS's managed SSM policy, for operators' shell sessions and the cluster link command
# (strata-link).

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name_prefix        = "${var.name}-strata-"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "tiered" {
  # Listing is not limited to the prefix: S3 answers a read of a missing key with 404 only to
  # a caller that may list the bucket (403 otherwise), and the tiering layer tells a segment
  # not yet uploaded by that 404. It reveals key names only; objects stay under the prefix.
  statement {
    sid       = "ListTheBucket"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.tiered.arn]
  }

  statement {
    sid = "ObjectsUnderThePrefix"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${aws_s3_bucket.tiered.arn}/${var.bucket_prefix}/*"]
  }

  dynamic "statement" {
    for_each = local.binary_object == null ? [] : [local.binary_object]
    content {
      sid       = "TheStrataBinary"
      actions   = ["s3:GetObject"]
      resources = ["arn:${data.aws_partition.current.partition}:s3:::${statement.value}"]
    }
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "TheBucketsKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "tiered" {
  name   = "tiered-storage"
  role   = aws_iam_role.node.id
  policy = data.aws_iam_policy_document.tiered.json
}

resource "aws_iam_role_policy_attachment" "ssm" {
  role       = aws_iam_role.node.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

data "aws_partition" "current" {}

resource "aws_iam_instance_profile" "node" {
  name_prefix = "${var.name}-strata-"
  role        = aws_iam_role.node.name
  tags        = local.tags
}
