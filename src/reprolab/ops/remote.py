"""The DVC remote on S3 (or anything speaking S3: MinIO, lakeFS's gateway, moto in tests).

`configure_s3` writes the shareable part (url, endpoint) to `.dvc/config`, which is
committed, and every secret to `.dvc/config.local`, which git ignores. Secrets never travel on
a command line (where `ps` and shell history would show them): they are written in-process
into a `config.local` readable by its owner only (mode 0600). `check` is a tiny
probe run before `dvc push/pull`: one request, no retry storm, and one message naming the
remote when the endpoint is unreachable, the credentials are rejected or the bucket is missing.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from reprolab.core.errors import ReprolabError

# options of a DVC S3 remote that are secrets: only ever written with `--local`
SECRET_OPTIONS = ("access_key_id", "secret_access_key", "session_token")


class RemoteError(ReprolabError):
    """The DVC remote is misconfigured or cannot be used; the message names it."""


@dataclass(frozen=True)
class S3Remote:
    name: str
    bucket: str
    prefix: str
    endpoint: str | None
    region: str | None
    profile: str | None
    access_key_id: str | None
    secret_access_key: str | None
    session_token: str | None

    @property
    def where(self) -> str:
        at = f" at {self.endpoint}" if self.endpoint else ""
        return f"remote '{self.name}' (s3://{self.bucket}/{self.prefix}{at})"


def _dvc(root: Path, *args: str) -> None:
    done = subprocess.run(["dvc", *args], cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RemoteError(f"dvc {' '.join(args[:3])}: {done.stderr.strip() or done.stdout}")


def configure_s3(
    root: Path,
    bucket: str,
    *,
    name: str = "s3",
    prefix: str = "dvc",
    endpoint: str | None = None,
    region: str | None = None,
    profile: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
) -> list[str]:
    """Add (or update) S3 remote `name` and make it the default. Returns what was written."""
    if not bucket or "/" in bucket:
        raise RemoteError(f"BUCKET: a bucket name without slashes is needed, got {bucket!r}")
    if bool(access_key_id) != bool(secret_access_key):
        raise RemoteError(
            "credentials: give both ACCESS_KEY_ID and its secret (REPROLAB_S3_SECRET_ACCESS_KEY "
            "in the environment, or typed at the prompt), or neither"
        )
    url = f"s3://{bucket}/{prefix.strip('/')}" if prefix.strip("/") else f"s3://{bucket}"
    _dvc(root, "remote", "add", "--force", "--default", name, url)
    done = [f".dvc/config: remote '{name}' url={url} (default)"]
    shared = {"endpointurl": endpoint, "region": region}
    for option, value in shared.items():
        if value:
            _dvc(root, "remote", "modify", name, option, value)
            done.append(f".dvc/config: {option}={value}")
    local = {"profile": profile, "access_key_id": access_key_id}
    local["secret_access_key"] = secret_access_key
    local = {option: value for option, value in local.items() if value}
    if local:
        write_local(root, name, local)
    for option, value in local.items():
        shown = value if option == "profile" else "***"
        done.append(f".dvc/config.local: {option}={shown}")
    return done


def write_local(root: Path, name: str, options: dict[str, str]) -> None:
    """Set `options` of remote `name` in `.dvc/config.local`, created with mode 0600 (and
    brought to 0600 if it existed), through DVC's own config writer: no subprocess argv."""
    import os

    from dvc.config import Config

    path = root / ".dvc" / "config.local"
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)
    config = Config(dvc_dir=str(root / ".dvc"), validate=False)
    with config.edit("local") as conf:
        conf.setdefault("remote", {}).setdefault(name, {}).update(options)
    os.chmod(path, 0o600)  # DVC rewrites the file; keep it private


def probe(root: Path, name: str | None = None, timeout: float = 5.0) -> str:
    """`check` the remote if it is on S3; other remotes (a local folder) need no probe."""
    remote = load_s3(root, name, only_s3=False)
    if isinstance(remote, str):
        return remote
    return check(remote, timeout)


def load_s3(root: Path, name: str | None = None, only_s3: bool = True) -> S3Remote | str:
    """The remote `name` (default: the repository's default remote), config files merged."""
    from dvc.config import Config

    config = Config(dvc_dir=str(root / ".dvc"), validate=False)
    name = name or config.get("core", {}).get("remote")
    if not name:
        raise RemoteError("no default DVC remote: run `make remote-s3 BUCKET=...` first")
    section = config.get("remote", {}).get(name)
    if section is None:
        known = sorted(config.get("remote", {}))
        raise RemoteError(f"remote '{name}': not configured (known remotes: {known})")
    url = urlparse(section["url"])
    if url.scheme != "s3":
        if not only_s3:
            return f"remote '{name}' ({section['url']}): not on S3, nothing to probe"
        raise RemoteError(f"remote '{name}': {section['url']} is not an s3:// remote")
    return S3Remote(
        name=name,
        bucket=url.netloc,
        prefix=url.path.lstrip("/"),
        endpoint=section.get("endpointurl"),
        region=section.get("region"),
        profile=section.get("profile"),
        access_key_id=section.get("access_key_id"),
        secret_access_key=section.get("secret_access_key"),
        session_token=section.get("session_token"),
    )


def check(remote: S3Remote, timeout: float = 5.0) -> str:
    """One HEAD on the bucket (then one LIST to tell bad keys from missing rights).

    Raises RemoteError with a single line naming the remote; returns a one-line summary.
    """
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        ProfileNotFound,
    )

    try:
        session = botocore.session.Session(profile=remote.profile)
        s3 = session.create_client(
            "s3",
            endpoint_url=remote.endpoint,
            region_name=remote.region or session.get_config_variable("region") or "us-east-1",
            aws_access_key_id=remote.access_key_id,
            aws_secret_access_key=remote.secret_access_key,
            aws_session_token=remote.session_token,
            config=Config(
                retries={"max_attempts": 1, "mode": "standard"},
                connect_timeout=timeout,
                read_timeout=timeout,
            ),
        )
        s3.head_bucket(Bucket=remote.bucket)
    except ProfileNotFound as err:
        raise RemoteError(f"{remote.where}: AWS profile not found ({err})") from None
    except NoCredentialsError:
        raise RemoteError(
            f"{remote.where}: no credentials (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "or `make remote-s3 ... PROFILE=` / `ACCESS_KEY_ID= SECRET_ACCESS_KEY=`)"
        ) from None
    except EndpointConnectionError as err:
        raise RemoteError(f"{remote.where}: endpoint unreachable ({err})") from None
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket"):
            raise RemoteError(f"{remote.where}: bucket '{remote.bucket}' does not exist") from None
        if code in ("403", "AccessDenied", "Forbidden"):
            raise RemoteError(f"{remote.where}: {_why_forbidden(s3, remote)}") from None
        raise RemoteError(f"{remote.where}: {code or 'error'} ({err})") from None
    except BotoCoreError as err:
        raise RemoteError(f"{remote.where}: {err}") from None
    return f"{remote.where}: reachable, bucket exists, credentials accepted"


def _why_forbidden(s3, remote: S3Remote) -> str:
    """HEAD responses carry no body: a LIST says whether the key or the rights are wrong."""
    from botocore.exceptions import ClientError

    try:
        s3.list_objects_v2(Bucket=remote.bucket, Prefix=remote.prefix, MaxKeys=1)
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", ""))
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken"):
            return f"credentials rejected ({code}): check the access key and secret"
        return f"access denied ({code or 403}): the credentials may not read this bucket"
    return "access denied (403) on the bucket, though listing works: check the policy"
