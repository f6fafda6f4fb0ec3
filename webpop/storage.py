"""Settings of the S3-compatible mail storage (WEBPOP_STORAGE=s3), read from the environment."""

from __future__ import annotations

import importlib.util

from django.core.exceptions import ImproperlyConfigured

from webpop.lib.env import env_bool, env_str


def s3_storage_options() -> dict:
    """Options for django-storages' S3Storage; secrets may come from ``*_FILE``."""
    if importlib.util.find_spec("storages") is None or importlib.util.find_spec("boto3") is None:
        raise ImproperlyConfigured(
            "WEBPOP_STORAGE=s3 needs django-storages and boto3 (pip install -r requirements.txt)."
        )
    bucket = env_str("WEBPOP_S3_BUCKET", "") or ""
    if not bucket:
        raise ImproperlyConfigured("WEBPOP_STORAGE=s3 needs WEBPOP_S3_BUCKET.")
    addressing = env_str("WEBPOP_S3_ADDRESSING_STYLE", "") or None
    if addressing not in {None, "path", "virtual", "auto"}:
        raise ImproperlyConfigured(f"WEBPOP_S3_ADDRESSING_STYLE={addressing!r} is not path, virtual or auto.")
    ca_bundle = env_str("WEBPOP_S3_CA_BUNDLE", "") or None
    return {
        "bucket_name": bucket,
        # Unset: AWS itself; e.g. https://minio.internal:9000 for an S3-compatible server.
        "endpoint_url": env_str("WEBPOP_S3_ENDPOINT_URL", "") or None,
        "region_name": env_str("WEBPOP_S3_REGION", "") or None,
        # Unset: boto3's own chain (AWS_* variables, instance roles).
        "access_key": env_str("WEBPOP_S3_ACCESS_KEY_ID", "") or None,
        "secret_key": env_str("WEBPOP_S3_SECRET_ACCESS_KEY", "") or None,
        "location": (env_str("WEBPOP_S3_PREFIX", "") or "").strip("/"),
        "addressing_style": addressing,
        # TLS verified by default: a CA bundle for a private CA, never "off".
        "verify": ca_bundle if ca_bundle else True,
        "use_ssl": env_bool("WEBPOP_S3_USE_SSL", True),
        # Names are content hashes: the same name always holds the same bytes.
        "file_overwrite": True,
        "default_acl": None,
        "querystring_auth": True,
    }
