"""File digests, checked before anything reads the bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from convrec.errors import ConvrecError


def digest(path: Path, algorithm: str = "sha256") -> str:
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def verify(path: Path, sha256: str, fix: str) -> None:
    """Raise a one-line ConvrecError unless `path` has the expected sha256."""
    actual = digest(path)
    if actual != sha256:
        raise ConvrecError(
            f"checksum mismatch for {path}: sha256 {actual[:16]}..., expected {sha256[:16]}...; "
            f"the file is corrupt or not the official release. {fix}"
        )
