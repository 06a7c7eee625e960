"""Where govex keeps files that every machine of a deployment must see (staged batches, Data
Docs): a local path, or an fsspec URL such as `s3://bucket/prefix`.

Object storage is reached through fsspec, loaded only when a URL asks for it (s3fs pulls in
botocore: seconds). S3's endpoint and credentials come from the standard AWS variables
(`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, …, or the instance role), read by botocore itself.
"""

from __future__ import annotations

from typing import Any

from govex.settings import load_settings


def is_local(url: str) -> bool:
    """Whether `url` names a local path (no scheme, or `file://`)."""
    return "://" not in url or url.startswith("file://")


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem of a non-local `url` and the path inside it. On S3 every write
    asks for server-side encryption (AES256, or aws:kms with GOVEX_STAGING_KMS_KEY): s3fs adds
    these arguments to each call that takes them (PutObject, CreateMultipartUpload,
    CopyObject), so a bucket policy denying unencrypted PUTs never refuses govex."""
    # fsspec (and s3fs behind it) load only when a location is not local.
    import fsspec

    options: dict[str, Any] = {}
    if fsspec.utils.get_protocol(url) in ("s3", "s3a"):
        kms_key = load_settings().staging_kms_key
        sse = ({"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key} if kms_key
               else {"ServerSideEncryption": "AES256"})
        # Other processes write what this one lists: never answer from a cached listing.
        options = {"s3_additional_kwargs": sse, "use_listings_cache": False}
    fs, path = fsspec.core.url_to_fs(url, **options)
    return fs, path
