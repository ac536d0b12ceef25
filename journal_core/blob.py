"""Content-addressed blobs for oversized payloads: ``blobs/<sha[:2]>/<sha>``.

A blob is written once and fsynced before the record that references it is appended. A read
verifies the hash; a missing or mismatched blob raises BlobError (a doctor ERROR).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import orjson

from . import limits
from .errors import BlobError, PayloadTooLarge
from .fileio import FileIO


def blob_matches(ref: dict[str, Any], data: bytes) -> bool:
    """Whether ``data`` is the content ``ref`` names (its sha256 and length)."""
    return hashlib.sha256(data).hexdigest() == ref.get("sha256") and len(data) == ref.get("bytes")


def blob_ref(data: bytes) -> dict[str, Any]:
    if len(data) > limits.blob_bytes_max:
        raise PayloadTooLarge(
            f"payload is {len(data)} bytes; at most {limits.blob_bytes_max} bytes are stored"
        )
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


class BlobStore:
    def __init__(self, blobs_dir: str, fileio: FileIO) -> None:
        self.blobs_dir = blobs_dir
        self.fileio = fileio

    def path(self, sha256: str) -> str:
        return os.path.join(self.blobs_dir, sha256[:2], sha256)

    def put(self, data: bytes) -> dict[str, Any]:
        """Store ``data`` durably (idempotent) and return its ref ``{sha256, bytes}``."""
        ref = blob_ref(data)
        sha256 = ref["sha256"]
        path = self.path(sha256)
        if self.fileio.size(path) != len(data):
            self.fileio.mkdir(os.path.dirname(path))
            self.fileio.write_atomic(path, data, durable=True)
        return ref

    def get(self, ref: dict[str, Any]) -> bytes:
        sha256 = str(ref.get("sha256"))
        data = self.fileio.read_file(self.path(sha256))
        if data is None:
            raise BlobError(f"blob {sha256} is missing from {self.blobs_dir}")
        if hashlib.sha256(data).hexdigest() != sha256:
            raise BlobError(f"blob {sha256} does not match its hash (damaged)")
        return data

    def exists(self, ref: dict[str, Any]) -> bool:
        return self.fileio.size(self.path(str(ref.get("sha256")))) == ref.get("bytes")

    def get_payload(self, ref: dict[str, Any]) -> dict[str, Any]:
        return payload_of(self.get(ref), ref)

    def archive(self, sha256: str) -> None:
        """Park a blob nothing references any more in archive/blobs/ (never deleted)."""
        archive = os.path.join(os.path.dirname(self.blobs_dir), "archive", "blobs", sha256[:2])
        self.fileio.mkdir(archive)
        self.fileio.rename(self.path(sha256), os.path.join(archive, sha256))
        self.fileio.fsync_dir(archive)
        self.fileio.fsync_dir(os.path.dirname(self.path(sha256)))

    def remove(self, sha256: str) -> None:
        """Delete a redacted blob, and its archived copy (redaction is the one deletion)."""
        self.fileio.unlink(self.path(sha256))
        archived = os.path.join(os.path.dirname(self.blobs_dir), "archive", "blobs",
                                sha256[:2], sha256)
        self.fileio.unlink(archived)

    def all_hashes(self) -> list[str]:
        found: list[str] = []
        for prefix in sorted(self.fileio.listdir(self.blobs_dir)):
            for name in sorted(self.fileio.listdir(os.path.join(self.blobs_dir, prefix))):
                if len(name) == 64 and name.startswith(prefix) and ".tmp." not in name:
                    found.append(name)
        return found


def payload_of(data: bytes, ref: dict[str, Any]) -> dict[str, Any]:
    """A blob's bytes as the payload they hold (every backend's ``get_payload``)."""
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BlobError(f"blob {ref.get('sha256')} is not a JSON payload") from exc
    if not isinstance(payload, dict):
        raise BlobError(f"blob {ref.get('sha256')} is not a JSON object")
    return payload
