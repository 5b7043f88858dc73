"""One boto3 S3 client as every S3 user here needs it: credentials only from the
environment given (no profile files, no instance metadata), and path-style addressing
for S3-compatible servers (MinIO, Ceph, moto answer at one host name)."""

from __future__ import annotations

from typing import Any


def s3_client(
    *,
    key_id: str,
    secret: str,
    token: str | None,
    region: str,
    endpoint: str | None,
    attempts: int = 3,
    connections: int = 20,
) -> Any:
    """A thread-safe boto3 S3 client (boto3 imported only now)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token=token,
        region_name=region,
    )
    return session.client(
        "s3",
        endpoint_url=endpoint,
        config=Config(
            retries={"max_attempts": attempts, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            max_pool_connections=connections,
            s3={"addressing_style": "path"} if endpoint else None,
        ),
    )
