"""The artifact store: the only code that knows where bytes live.

Two backends behind one interface: a local directory (the embedded default) and S3 through boto3
(any S3-compatible server via ``endpoint_url``). Keys are deterministic, so a retry overwrites rather
than duplicates, and every write is atomic: a local write goes to a temporary file renamed into place;
an S3 PUT (single or multipart) becomes visible only once complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlparse

VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # whole strings only: fullmatch ($ lets "id\n" through)


def check_video_id(video_id: str) -> str:
    """Video ids go into keys and paths: refuse anything but a plain identifier."""
    if not VIDEO_ID.fullmatch(video_id or ""):
        raise ValueError(f"invalid video id {video_id!r}: expected 1-64 of [A-Za-z0-9_-]")
    return video_id


def safe_video_id(text: str) -> str:
    """A video id for any source id: the id itself when it is a plain identifier, else its characters outside
    [A-Za-z0-9_-] replaced and, so that different ids stay different ('talk.1', 'talk:1', two long ids sharing
    their first 64 characters), a short hash of the original added."""
    if VIDEO_ID.fullmatch(text):
        return text
    return hashed_id(re.sub(r'[^A-Za-z0-9_-]', '_', text), text)


def hashed_id(base: str, text: str) -> str:
    """A video id that is `base` (a valid id's characters) told apart by a short hash of `text`, within 64
    characters."""
    # surrogatepass: a file name that is not UTF-8 (bytes kept as lone surrogates by os.fsdecode) hashes too
    return f"{base[:55]}-{hashlib.sha1(text.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


SCRATCH = "lectern-video-"  # a stage's temporary folders: lectern-video-{id}.{purpose}.XXXX in the temp dir
STALE_AFTER_S = 600  # a partial file or scratch folder untouched this long was left by a process that is gone


@contextmanager
def scratch_dir(video_id: str, purpose: str) -> Iterator[Path]:
    """A temporary folder for one video's work, named for it: a killed process's is found and removed (by
    `remove_scratch`, when the video's next stage starts or when it is forgotten)."""
    with tempfile.TemporaryDirectory(prefix=f"{SCRATCH}{check_video_id(video_id)}.{purpose}.") as folder:
        yield Path(folder)


def remove_scratch(video_id: str, idle_s: float | None = None) -> int:
    """Remove the video's scratch folders (those untouched for `idle_s` seconds; None: all of them)."""
    removed = 0
    for folder in Path(tempfile.gettempdir()).glob(f"{SCRATCH}{check_video_id(video_id)}.*"):
        if idle_s is None or _idle_seconds(folder) > idle_s:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def _idle_seconds(path: Path) -> float:
    """Seconds since anything in `path` (itself, or any file under it) last changed."""
    try:
        newest = max([path.stat().st_mtime, *(p.stat().st_mtime for p in path.rglob("*"))])
    except FileNotFoundError:  # removed meanwhile
        return 0.0
    return time.time() - newest


class DeleteFailed(OSError):
    """The S3 server kept keys a delete named (each with its error code)."""


class Keys:
    """Keys by meaning; nothing builds paths by hand. A stage's artifacts follow one rule (StageSpec.key: the file
    its spec names, in the video's folder); its keyframe images and a release's files have their own."""

    @staticmethod
    def video(video_id: str, name: str) -> str:
        return f"videos/{check_video_id(video_id)}/{name}"

    @staticmethod
    def video_of(key: str) -> str | None:
        """The video whose artifact `key` is (the inverse of `video`), or None for a key of no video."""
        parts = key.split("/")
        return parts[1] if len(parts) > 2 and parts[0] == "videos" else None

    @classmethod
    def keyframe(cls, video_id: str, start: float, end: float, n: int) -> str:
        return cls.video(video_id, f"keyframes/{video_id}@{start:.1f}_{end:.1f}#{n}.jpg")

    @staticmethod
    def release(release: str, name: str) -> str:
        if not VIDEO_ID.fullmatch(release):
            raise ValueError(f"invalid release name {release!r}")
        return f"releases/{release}/{name}"

    @staticmethod
    def exports(release: str) -> str:
        """Where each export of a release was written (host, folder, layout): what a takedown re-exports."""
        if not VIDEO_ID.fullmatch(release):
            raise ValueError(f"invalid release name {release!r}")
        return f"exports/{release}.json"

    @staticmethod
    def baseline(release: str, name: str) -> str:
        """The baseline classifier trained on a release (lectern/baseline.py)."""
        if not VIDEO_ID.fullmatch(release):
            raise ValueError(f"invalid release name {release!r}")
        return f"baselines/{release}/{name}"


class Store:
    """Interface shared by both backends."""

    url: str
    # Objects read or copied out at once (an export's images): S3 round trips overlap. A local store's are hard links,
    # metadata operations that threads only contend on: one at a time was faster (bench/results/scale.md).
    parallel_reads = 8

    def put_bytes(self, key: str, data: bytes) -> str: ...
    def put_file(self, key: str, path: str | Path) -> str: ...
    def get_bytes(self, key: str) -> bytes: ...
    def iter_bytes(self, key: str, chunk: int = 1 << 20) -> Iterator[bytes]: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str) -> list[str]: ...
    def delete_keys(self, keys: list[str]) -> int: ...
    def remove_partial(self, prefix: str, idle_s: float | None = None) -> int: ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key under `prefix`, and any write left unfinished there."""
        self.remove_partial(prefix)
        return self.delete_keys(self.list(prefix))

    def uri(self, key: str) -> str: ...
    def ensure_bucket(self) -> None: ...

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:  # pragma: no cover - overridden
        yield Path()

    def copy_out(self, key: str, path: Path) -> None:
        """The object written to a file outside the store, whole or not at all (an export's image)."""
        replace_atomically(path, lambda temporary: temporary.write_bytes(self.get_bytes(key)))

    def put_json(self, key: str, value: Any) -> str:
        return self.put_bytes(key, json.dumps(value, ensure_ascii=False, indent=1).encode())

    def get_json(self, key: str) -> Any:
        return json.loads(self.get_bytes(key))


class LocalStore(Store):
    parallel_reads = 1

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.url = f"file://{self.root}"

    def _path(self, key: str) -> Path:
        """The file of a key, checked by its text: relative, no `..` out of the root, no NUL. Not by resolving it: a
        realpath is an lstat per folder of the path, 30 us of an export's ~100 us an image, and more as 1.4M
        files crowd the inode cache (bench/scale.py)."""
        normal = os.path.normpath(key)
        if not key or "\0" in key or os.path.isabs(normal) or normal in (".", "..") or normal.startswith("../"):
            raise ValueError(f"key {key!r} escapes the store")
        return self.root / normal

    def _atomic(self, key: str, write) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return key

    def put_bytes(self, key: str, data: bytes) -> str:
        return self._atomic(key, lambda handle: handle.write(data))

    def put_file(self, key: str, path: str | Path) -> str:
        def copy(handle):
            with open(path, "rb") as source:
                shutil.copyfileobj(source, handle, 1 << 20)

        return self._atomic(key, copy)

    def get_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def iter_bytes(self, key: str, chunk: int = 1 << 20) -> Iterator[bytes]:
        with open(self._path(key), "rb") as handle:
            while data := handle.read(chunk):
                yield data

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if base.is_file():
            return [prefix]
        if not base.exists():
            return []
        return sorted(
            str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file() and not p.name.endswith(".tmp")
        )

    def delete_keys(self, keys: list[str]) -> int:
        for key in keys:
            self._path(key).unlink(missing_ok=True)
        return len(keys)

    def remove_partial(self, prefix: str, idle_s: float | None = None) -> int:
        """Remove the temporary files of writes a killed process left under `prefix` (`list` never shows them)."""
        base = self._path(prefix) if prefix else self.root
        partial = [p for p in base.rglob(".*.tmp") if p.is_file()] if base.is_dir() else []
        partial = [p for p in partial if idle_s is None or _idle_seconds(p) > idle_s]
        for path in partial:
            path.unlink(missing_ok=True)
        return len(partial)

    def uri(self, key: str) -> str:
        return str(self._path(key))

    def ensure_bucket(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(key)
        yield path

    def copy_out(self, key: str, path: Path) -> None:
        """A hard link where the file system allows it (no bytes copied; the store replaces, never rewrites, a
        file, so the link keeps what it was exported with), else a copy."""
        source = self._path(key)
        with suppress(OSError):  # not there yet (the usual case): linked straight into place, whole
            os.link(source, path)
            return
        # there already (an export again), its folder missing, another file system: beside it, then renamed

        def link_or_copy(temporary: Path) -> None:
            try:
                os.link(source, temporary)
            except OSError:  # another file system, or links not allowed
                shutil.copyfile(source, temporary)

        replace_atomically(path, link_or_copy)


def s3_client_config():
    from botocore.config import Config

    # path-style: S3-compatible servers (Ceph RGW, MinIO) are seldom reachable as bucket.host
    return Config(retries={"max_attempts": 5, "mode": "standard"}, s3={"addressing_style": "path"})


# How an S3 client is made from a connection id (LECTERN_S3_CONN_ID): set by Airflow's side where it runs
# (lectern_airflow.connections); None in a process without Airflow (a stage pod), which reads the AWS_* variables.
_connection_clients: Callable[[str, str | None, str], Any] | None = None


def use_connection_clients(factory: Callable[[str, str | None, str], Any] | None) -> None:
    """Make S3 stores named by a connection id with `factory(conn_id, endpoint_url, region)`."""
    global _connection_clients
    _connection_clients = factory


class S3Store(Store):
    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None, region: str = "us-east-1",
                 client: Any = None):
        import boto3

        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.client = client or boto3.client("s3", endpoint_url=endpoint_url, region_name=region,
                                             config=s3_client_config())
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")

    def _key(self, key: str) -> str:
        if ".." in key.split("/"):
            raise ValueError(f"key {key!r} escapes the store")
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_bytes(self, key: str, data: bytes) -> str:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        return key

    def put_file(self, key: str, path: str | Path) -> str:
        self.client.upload_file(str(path), self.bucket, self._key(key))
        return key

    def _body(self, key: str):
        """The object's streaming body; FileNotFoundError when there is none."""
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except self.client.exceptions.NoSuchKey as exc:
            raise FileNotFoundError(key) from exc

    def get_bytes(self, key: str) -> bytes:
        with self._body(key) as body:
            return body.read()

    def iter_bytes(self, key: str, chunk: int = 1 << 20) -> Iterator[bytes]:
        with self._body(key) as body:
            yield from body.iter_chunks(chunk)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def list(self, prefix: str) -> list[str]:
        keys = []
        strip = len(self.prefix) + 1 if self.prefix else 0
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            keys.extend(item["Key"][strip:] for item in page.get("Contents", []))
        return sorted(keys)

    def delete_keys(self, keys: list[str]) -> int:
        for start in range(0, len(keys), 1000):
            chunk = [{"Key": self._key(k)} for k in keys[start:start + 1000]]
            # Quiet still reports the keys it could not delete, in Errors, with a 200: check them.
            errors = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True}
                                                ).get("Errors", [])
            if errors:
                raise DeleteFailed(", ".join(f"{e.get('Key')}: {e.get('Code')} {e.get('Message', '')}".strip()
                                             for e in errors[:5]) + (f" (and {len(errors) - 5} more)"
                                                                      if len(errors) > 5 else ""))
        return len(keys)

    def remove_partial(self, prefix: str, idle_s: float | None = None) -> int:
        """Abort the multipart uploads a killed process left under `prefix` (their parts are stored and billed
        until aborted; a bucket lifecycle rule, docs/reliability.md, aborts any that this misses)."""
        from datetime import datetime, timedelta, timezone

        cutoff = datetime.now(timezone.utc) - timedelta(seconds=idle_s or 0)
        aborted = 0
        paginator = self.client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            for upload in page.get("Uploads", []):
                if idle_s is None or upload["Initiated"] < cutoff:
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                                       UploadId=upload["UploadId"])
                    aborted += 1
        return aborted

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        video_id = Keys.video_of(key)
        folder = scratch_dir(video_id, "fetch") if video_id else tempfile.TemporaryDirectory(prefix="lectern-")
        with folder as tmp:
            path = Path(tmp) / Path(key).name
            self._download(key, path)
            yield path

    def copy_out(self, key: str, path: Path) -> None:
        replace_atomically(path, lambda temporary: self._download(key, temporary))

    def _download(self, key: str, path: Path) -> None:
        try:
            self.client.download_file(self.bucket, self._key(key), str(path))
        except Exception as exc:  # botocore raises ClientError 404 here
            if "404" in str(exc) or "Not Found" in str(exc):
                raise FileNotFoundError(key) from exc
            raise


def replace_atomically(path: Path, write) -> None:
    """`write(temporary)` beside `path`, then renamed over it: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class FencedStore(Store):
    """A store whose every write first calls `check`, which raises once the writer's claim on the video-stage is
    known lost (the heartbeat saw it, or the state DB says so). It is check-then-write, not an atomic fence: a write
    that begins just before the lease runs out still lands. Writes are atomic and keys deterministic, so what lands
    is a whole file of the same name, which the successor's own run overwrites; its outcome is never recorded."""

    def __init__(self, store: Store, check):
        self.store, self.check, self.url = store, check, store.url
        self.parallel_reads = store.parallel_reads

    def put_bytes(self, key: str, data: bytes) -> str:
        self.check()
        return self.store.put_bytes(key, data)

    def put_file(self, key: str, path: str | Path) -> str:
        self.check()
        return self.store.put_file(key, path)

    def delete_keys(self, keys: list[str]) -> int:
        self.check()
        return self.store.delete_keys(keys)

    def remove_partial(self, prefix: str, idle_s: float | None = None) -> int:
        self.check()
        return self.store.remove_partial(prefix, idle_s)

    def get_bytes(self, key: str) -> bytes:
        return self.store.get_bytes(key)

    def iter_bytes(self, key: str, chunk: int = 1 << 20) -> Iterator[bytes]:
        return self.store.iter_bytes(key, chunk)

    def exists(self, key: str) -> bool:
        return self.store.exists(key)

    def list(self, prefix: str) -> list[str]:
        return self.store.list(prefix)

    def uri(self, key: str) -> str:
        return self.store.uri(key)

    def ensure_bucket(self) -> None:
        self.store.ensure_bucket()

    def local_path(self, key: str):
        return self.store.local_path(key)


def open_store(url: str, endpoint_url: str | None = None, region: str = "us-east-1",
               conn_id: str | None = None) -> Store:
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        client = _connection_clients(conn_id, endpoint_url, region) if conn_id and _connection_clients else None
        return S3Store(parsed.netloc, parsed.path, endpoint_url=endpoint_url, region=region, client=client)
    if parsed.scheme in ("file", ""):
        return LocalStore(parsed.path if parsed.scheme else url)
    raise ValueError(f"unsupported store URL {url!r}: use file:///dir or s3://bucket/prefix")


def store_from_settings(settings) -> Store:
    return open_store(settings.store_url, settings.s3_endpoint_url, settings.s3_region, settings.s3_conn_id)
