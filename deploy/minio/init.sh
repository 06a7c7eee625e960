#!/bin/sh
# minio-init (docker-compose.yml), at every start of the stack: the staging bucket and the one
# user govex works as. Idempotent, so a restart changes nothing; a changed policy file or
# GOVEX_S3_SECRET_KEY takes effect at the next start.
#
#   bucket govex-staging   encrypted by default (SSE-S3), expiring staging/ objects after 7 days
#   user   govex           may list, read, write and delete in that bucket only (policy.json)
#
# What the policy on AWS looks like, and why each rule: docs/operations.md, "Staging on object
# storage". MinIO has no TLS inside compose, so the AWS policy's DenyInsecureTransport does not
# apply here; put TLS in front of MinIO (or use S3) when workers reach it over a network.
set -eu

BUCKET=govex-staging
HERE=${0%/*}  # shell only: the mc image has few tools besides mc

mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
mc mb --ignore-existing "local/$BUCKET"
# Every object encrypted at rest, also one whose PUT did not ask (govex always asks).
mc encrypt set sse-s3 "local/$BUCKET"
# Replaces the bucket's lifecycle whole (so it is idempotent). MinIO removes incomplete
# multipart uploads by itself (after 24 h by default), the other half of the AWS rule.
mc ilm rule import "local/$BUCKET" < "$HERE/lifecycle.json"

mc admin policy create local govex-staging "$HERE/policy.json"
mc admin user add local govex "$GOVEX_S3_SECRET_KEY"
# Attaching twice is an error; being attached already is what we want.
if ! mc admin policy attach local govex-staging --user govex; then
    case "$(mc admin user info local govex)" in
        *govex-staging*) ;;
        *) echo "minio-init: could not attach policy govex-staging to user govex" >&2; exit 1 ;;
    esac
fi
