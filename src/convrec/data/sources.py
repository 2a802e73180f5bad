"""Raw source files: from the official servers by default, from a local mirror when set.

`CONVREC_DATA_MIRROR` names a folder laid out like the files' relative paths
(`MNIST/raw/train-images-idx3-ubyte.gz`, ...). Either way the file is checked
against its published sha256 before it is copied into `data/raw/`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from convrec.data.checksums import digest, verify
from convrec.errors import ConvrecError

MIRROR_ENV = "CONVREC_DATA_MIRROR"


@dataclass(frozen=True)
class RemoteFile:
    relpath: str  # where it sits in a mirror and under data/raw/
    sha256: str
    md5: str  # what the official servers publish (torchvision's table)
    urls: tuple[str, ...]


def mirror_root() -> Path | None:
    value = os.environ.get(MIRROR_ENV)
    if not value:
        return None
    root = Path(value).expanduser().resolve()
    if not root.is_dir():
        raise ConvrecError(
            f"{MIRROR_ENV}={value} is not a folder; point it at a data mirror "
            f"(such as ../shared/data) or unset it to download from the official sources"
        )
    return root


def fetch(remote: RemoteFile, raw_dir: Path) -> Path:
    """Return a verified local copy of `remote` under `raw_dir`."""
    target = raw_dir / remote.relpath
    if target.is_file() and digest(target) == remote.sha256:
        return target
    mirror = mirror_root()
    if mirror is not None:
        source = mirror / remote.relpath
        if not source.is_file():
            raise ConvrecError(
                f"{source} is missing from the mirror {MIRROR_ENV}={mirror}; "
                f"add the file there or unset {MIRROR_ENV} to download it"
            )
        verify(source, remote.sha256, fix=f"Replace it in the mirror {mirror}.")
        _install(source, target, copy=True)
        return target
    return _download(remote, target)


def _download(remote: RemoteFile, target: Path) -> Path:
    # torchvision's helper follows redirects, shows progress and checks the md5.
    from torchvision.datasets.utils import download_url

    errors = []
    with tempfile.TemporaryDirectory(dir=_parent(target)) as tmp:
        for url in remote.urls:
            try:
                download_url(url, root=tmp, filename=target.name, md5=remote.md5)
            except Exception as err:  # noqa: BLE001 - every mirror gets its chance
                errors.append(f"{url}: {err}")
                continue
            downloaded = Path(tmp) / target.name
            verify(downloaded, remote.sha256, fix="Delete data/raw/ and download again.")
            _install(downloaded, target, copy=False)
            return target
    raise ConvrecError(
        f"could not download {remote.relpath} ({'; '.join(errors)}); check the network, "
        f"or set {MIRROR_ENV} to a folder that mirrors the data"
    )


def _parent(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.parent


def _install(source: Path, target: Path, copy: bool) -> None:
    tmp = _parent(target) / f".{target.name}.part"
    if copy:
        shutil.copyfile(source, tmp)
    else:
        shutil.move(source, tmp)
    os.replace(tmp, target)
