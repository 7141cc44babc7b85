"""`reprolab remote`: configure and probe the DVC remote on S3."""

from __future__ import annotations

import click

from reprolab.cli_support import user_errors


@click.group()
def remote() -> None:
    """Configure and probe the DVC remote on S3 (`make remote-s3`, `make push/pull`)."""


@remote.command("s3")
@click.argument("bucket")
@click.option("--name", default="s3", show_default=True, help="DVC remote name.")
@click.option("--prefix", default="dvc", show_default=True, help="Path inside the bucket.")
@click.option("--endpoint", help="S3-compatible endpoint (MinIO, lakeFS gateway, ...).")
@click.option("--region", help="Bucket region.")
@click.option("--profile", help="AWS profile (written to .dvc/config.local).")
@click.option("--access-key-id", envvar="REPROLAB_S3_ACCESS_KEY_ID", help="To .dvc/config.local.")
def remote_s3(bucket: str, name: str, prefix: str, **options: str | None) -> None:
    """Make s3://BUCKET/PREFIX the default DVC remote; secrets only to .dvc/config.local
    (mode 0600). The secret key is never an option: it is read from
    REPROLAB_S3_SECRET_ACCESS_KEY (or AWS_SECRET_ACCESS_KEY), else asked for, hidden."""
    import os

    with user_errors():
        from reprolab.core.paths import workspace_root
        from reprolab.ops.remote import configure_s3

        secret = os.environ.get("REPROLAB_S3_SECRET_ACCESS_KEY") or (
            os.environ.get("AWS_SECRET_ACCESS_KEY") if options.get("access_key_id") else None
        )
        if options.get("access_key_id") and not secret and click.get_text_stream("stdin").isatty():
            secret = click.prompt("secret access key", hide_input=True)
        options["secret_access_key"] = secret or None
        for line in configure_s3(workspace_root(), bucket, name=name, prefix=prefix, **options):
            click.echo(line)


@remote.command("check")
@click.argument("name", required=False)
@click.option("--timeout", default=5.0, show_default=True, help="Seconds per request.")
def remote_check(name: str | None, timeout: float) -> None:
    """Probe the S3 remote NAME (default remote if omitted) with one request."""
    with user_errors():
        from reprolab.core.paths import workspace_root
        from reprolab.ops.remote import probe

        click.echo(probe(workspace_root(), name, timeout=timeout))
