"""The store's shared half: blobs, manifests and converted models in an S3-compatible bucket.

bucket/prefix/
  blobs/sha256/<hex>                              content-addressed, each one whole
  manifests/<registry>/<name>/<revision>.json     written after every blob it names
  converted/<lookup>.json                         a converted model: its files, as blobs

Every object appears whole or not at all: a PUT, and the completion of a multipart upload,
is atomic, so nothing partial is ever under one of these keys (an upload cut short leaves
an incomplete multipart upload, which no listing or GET shows). Uploads carry the sha256
checksum the service verifies (per part for a multipart upload, and read back to compare);
whatever is downloaded is hashed again before the local cache keeps it. boto3 is imported
only when a bucket is configured.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelport.errors import IntegrityError, MissingExtraError, ObjectStoreError
from modelport.store.integrity import sha256_of
from modelport.store.layout import safe_relative_path

__all__ = ["RemoteStore"]

#: Files past this size go up in parts of this size (S3's smallest part is 5 MiB); boto3's
#: transfer manager grows the parts of a file that would need more than 10,000.
PART_SIZE = 8 * 1024 * 1024
_KEY_RE_CHARS = set("0123456789abcdef")


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def _shown(url: str) -> str:
    """An endpoint as messages show it: never with credentials written into it."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _one_line(error: object) -> str:
    text = " ".join(str(error).split())
    return text if text.endswith((".", "?", "!")) else text + "."


class RemoteStore:
    """One bucket (and prefix) of an S3-compatible service that every server shares."""

    def __init__(self, url: str, *, endpoint_url: str | None = None, timeout: float = 30.0) -> None:
        self.url = url
        self.bucket, _, self.prefix = url.removeprefix("s3://").partition("/")
        self.endpoint_url = endpoint_url
        self.timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()
        #: Blobs this process found corrupt in the bucket: the next commit overwrites them.
        self.suspect: set[str] = set()

    def __repr__(self) -> str:
        return f"RemoteStore({self.url!r})"

    # ---------------------------------------------------------------- keys

    def key(self, *parts: str) -> str:
        """An object key under the store's prefix."""
        return "/".join(p for p in (self.prefix, *parts) if p)

    def blob_key(self, sha256: str) -> str:
        """The key of the blob with this sha256."""
        if len(sha256) != 64 or not set(sha256) <= _KEY_RE_CHARS:
            raise ValueError(f"not a sha256 digest: {sha256!r}")
        return self.key("blobs", "sha256", sha256)

    def manifest_key(self, relative: str) -> str:
        """The key of a manifest, by its path under the local store's ``manifests/``."""
        return self.key("manifests", relative)

    # ---------------------------------------------------------------- the client

    @property
    def client(self) -> Any:
        """The boto3 S3 client (threads share it), made on first use."""
        with self._lock:
            if self._client is None:
                try:
                    import boto3
                    from botocore.config import Config
                except ImportError:
                    feature = "A store in a bucket (MODELPORT_STORE_URL)"
                    raise MissingExtraError("s3", feature=feature) from None
                config = Config(
                    connect_timeout=min(self.timeout, 10.0),
                    read_timeout=self.timeout,
                    retries={"max_attempts": 4, "mode": "standard"},
                    max_pool_connections=32,
                    # A service of one's own (MinIO, Ceph, a test server) answers at one
                    # host, not at one per bucket.
                    s3={"addressing_style": "path"} if self.endpoint_url else {},
                    # Checksums only where an operation needs one or modelport asks (the
                    # sha256 of every upload): the default CRC32 would cost a second pass.
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                )
                with self._failures("connect"):
                    self._client = boto3.session.Session().client(
                        "s3", endpoint_url=self.endpoint_url, config=config
                    )
            return self._client

    def _transfer(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(
            multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE, max_concurrency=8
        )

    @contextlib.contextmanager
    def _failures(self, what: str) -> Iterator[None]:
        """Every failure of the service or of the way to it, as one sentence."""
        try:
            yield
        except (ObjectStoreError, MissingExtraError):
            raise
        except Exception as e:
            raise self._error(e, what) from None

    def _error(self, error: Exception, what: str) -> ObjectStoreError:
        from botocore.exceptions import (
            ClientError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        where = f" at {_shown(self.endpoint_url)}" if self.endpoint_url else ""
        cause: BaseException | None = error
        while cause is not None and not isinstance(
            cause, ClientError | NoCredentialsError | PartialCredentialsError
        ):
            cause = cause.__cause__ or cause.__context__  # s3transfer wraps what it met
        if isinstance(cause, NoCredentialsError | PartialCredentialsError):
            return ObjectStoreError(
                f"No credentials for the bucket {self.url}.",
                hint="Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE.",
            )
        if isinstance(cause, ClientError):
            code = str(cause.response.get("Error", {}).get("Code", ""))
            if code == "NoSuchBucket":
                return ObjectStoreError(
                    f"The bucket {self.bucket}{where} does not exist.",
                    hint="Create it, or set MODELPORT_STORE_URL to an existing bucket.",
                )
            if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
                return ObjectStoreError(
                    f"The object store{where} refused access to {self.url} ({code}) "
                    f"when asked to {what}.",
                    hint="Check the credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE) and the "
                    "bucket's policy.",
                )
            return ObjectStoreError(
                f"The object store{where} answered {code or 'an error'} when asked to {what} "
                f"in {self.url}.",
                hint="Try again later; if it persists, check the service's own logs.",
            )
        return ObjectStoreError(
            f"Cannot {what} in {self.url}: {_one_line(error)}",
            hint="Check MODELPORT_S3_ENDPOINT_URL (or AWS_ENDPOINT_URL) and that the object "
            "store is up.",
        )

    @staticmethod
    def _missing(error: Exception) -> bool:
        from botocore.exceptions import ClientError

        cause: BaseException | None = error
        while cause is not None and not isinstance(cause, ClientError):
            cause = cause.__cause__ or cause.__context__
        if not isinstance(cause, ClientError):
            return False
        code = str(cause.response.get("Error", {}).get("Code", ""))
        return code in ("404", "NoSuchKey", "NotFound")

    # ---------------------------------------------------------------- objects

    def size(self, key: str) -> int | None:
        """The size of an object, or None when there is none."""
        with self._failures("look up an object"):
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=key)
            except Exception as e:
                if self._missing(e):
                    return None
                raise
        return int(head["ContentLength"])

    def read_text(self, key: str) -> str | None:
        """A small object's text, or None when there is none."""
        with self._failures("read an object"):
            try:
                answer = self.client.get_object(Bucket=self.bucket, Key=key)
            except Exception as e:
                if self._missing(e):
                    return None
                raise
            return str(answer["Body"].read().decode())

    def read_range(self, key: str, start: int, length: int) -> bytes | None:
        """``length`` bytes of an object from ``start`` (fewer at its end), or None when
        there is no such object."""
        with self._failures("read an object"):
            try:
                answer = self.client.get_object(
                    Bucket=self.bucket, Key=key, Range=f"bytes={start}-{start + length - 1}"
                )
            except Exception as e:
                if self._missing(e):
                    return None
                raise
            return bytes(answer["Body"].read())

    def write_text(self, key: str, text: str) -> None:
        """Put a small object whole, its sha256 verified by the service."""
        body = text.encode()
        with self._failures("write an object"):
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ChecksumSHA256=_b64(hashlib.sha256(body).hexdigest()),
                ContentType="application/json",
            )

    def delete(self, keys: list[str]) -> None:
        """Delete objects (those already gone are no error)."""
        with self._failures("delete objects"):
            for start in range(0, len(keys), 1000):
                batch = [{"Key": k} for k in keys[start : start + 1000]]
                self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )

    def objects(self, under: str = "") -> list[tuple[str, int]]:
        """Every object (key, size) under a part of the prefix."""
        found: list[tuple[str, int]] = []
        with self._failures("list objects"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.key(under) + ("/" if under or self.prefix else "")
            )
            for page in pages:
                found += [(o["Key"], int(o["Size"])) for o in page.get("Contents", [])]
        return found

    def uploads(self) -> list[tuple[str, str]]:
        """Multipart uploads begun and never completed (key, upload id): invisible, but
        they take space until aborted."""
        found: list[tuple[str, str]] = []
        with self._failures("list multipart uploads"):
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self.key("")
            )
            for page in pages:
                found += [(u["Key"], u["UploadId"]) for u in page.get("Uploads", [])]
        return found

    # ---------------------------------------------------------------- blobs

    def has_blob(self, sha256: str, size: int | None = None) -> bool:
        """Whether the bucket holds this blob (with this size), not suspected of damage."""
        if sha256 in self.suspect:
            return False
        found = self.size(self.blob_key(sha256))
        return found is not None and (size is None or found == size)

    def fetch_blob(self, sha256: str, target: Path, *, scratch: Path) -> bool:
        """Download a blob to ``target``, hashed before it is renamed there; False when the
        bucket lacks it or holds other bytes under its name (then it is suspect, and the
        next commit of a model with it uploads it again)."""
        if sha256 in self.suspect:
            return False
        scratch.mkdir(parents=True, exist_ok=True)
        tmp = scratch / f".s3.{uuid.uuid4().hex}.tmp"
        try:
            with self._failures("download a blob"):
                try:
                    self.client.download_file(
                        self.bucket, self.blob_key(sha256), str(tmp), Config=self._transfer()
                    )
                except Exception as e:
                    if self._missing(e):
                        return False
                    raise
            if sha256_of(tmp) != sha256:
                self.suspect.add(sha256)
                return False
            os.chmod(tmp, 0o444)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
            return True
        finally:
            tmp.unlink(missing_ok=True)

    def put_blob(self, sha256: str, source: Path) -> None:
        """Upload a verified blob under its sha256, in parts past ``PART_SIZE``; the
        service checks each part's sha256, and the checksum it keeps is compared with ours."""
        size = source.stat().st_size
        key = self.blob_key(sha256)
        extra: dict[str, str] = {"ChecksumAlgorithm": "SHA256"}
        if size < PART_SIZE:
            # One PUT: the service checks the bytes against the digest the hub's was.
            extra["ChecksumSHA256"] = _b64(sha256)
        with self._failures("upload a blob"):
            self.client.upload_file(
                str(source), self.bucket, key, ExtraArgs=extra, Config=self._transfer()
            )
            head = self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        kept = str(head.get("ChecksumSHA256") or "").split("-")[0]
        if int(head["ContentLength"]) != size or (
            kept and kept not in (_b64(sha256), self._composite(source, size))
        ):
            with contextlib.suppress(ObjectStoreError):
                self.delete([key])
            raise IntegrityError(
                f"The object store kept other bytes than were sent for blob {sha256[:12]}….",
                hint="Nothing was recorded; run the pull again.",
            )
        self.suspect.discard(sha256)

    def _composite(self, source: Path, size: int) -> str:
        """The checksum S3 keeps of a multipart upload: the sha256 of its parts' sha256s."""
        from s3transfer.utils import ChunksizeAdjuster

        part = ChunksizeAdjuster().adjust_chunksize(PART_SIZE, size)
        digests = b""
        with source.open("rb") as fh:
            while chunk := fh.read(part):
                digests += hashlib.sha256(chunk).digest()
        return base64.b64encode(hashlib.sha256(digests).digest()).decode()

    # ---------------------------------------------------------------- folders

    def keep_folder(self, name: str, folder: Path) -> None:
        """Keep a folder (a converted model) as blobs and, last, an object listing them."""
        files: dict[str, dict[str, Any]] = {}
        for path in sorted(folder.rglob("*")):
            # Dot files are this machine's own notes (what ONNX Runtime here can run).
            hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
            if path.is_file() and not path.is_symlink() and not hidden:
                files[path.relative_to(folder).as_posix()] = {
                    "sha256": sha256_of(path),
                    "size": path.stat().st_size,
                }
        for relative, f in files.items():
            if not self.has_blob(f["sha256"], f["size"]):
                self.put_blob(f["sha256"], folder / relative)
        document = {"folder": folder.name, "files": files}
        self.write_text(self.key(f"{name}.json"), json.dumps(document, sort_keys=True))

    def fetch_folder(self, name: str, out_root: Path) -> Path | None:
        """Bring a folder kept by ``keep_folder`` to ``out_root/<its name>`` (each file
        hashed, the folder renamed into place whole); None when the bucket lacks any of it."""
        text = self.read_text(self.key(f"{name}.json"))
        if text is None:
            return None
        try:
            document = json.loads(text)
            folder = str(document["folder"])
            files = {
                safe_relative_path(path): (str(f["sha256"]), int(f["size"]))
                for path, f in document["files"].items()
            }
            if not folder.isalnum():
                raise ValueError(folder)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None  # not a document this modelport wrote: convert here instead
        target = out_root / folder
        if target.exists():
            return target
        staging = out_root / f".{folder}.{uuid.uuid4().hex}.tmp"
        try:
            for relative, (sha256, _size) in files.items():
                if not self.fetch_blob(sha256, staging / relative, scratch=out_root):
                    return None
            for path in staging.rglob("*"):
                if path.is_file():
                    os.chmod(path, 0o644)
            try:
                os.replace(staging, target)
            except OSError:
                if not target.exists():  # not another process's copy
                    raise
            return target
        finally:
            shutil.rmtree(staging, ignore_errors=True)
