"""Raw source files: from the official servers by default, from a local mirror when set.

`CONVREC_DATA_MIRROR` names a folder laid out like the files' relative paths
(`MNIST/raw/train-images-idx3-ubyte.gz`, ...). Either way the file is checked
against its published sha256 before it is copied into `data/raw/`.

Some data sets are mirrored as other files than the publisher ships (a repacked
archive, the extracted files of a zip): an `Archive` names both, and
`fetch_archive` says which of the two it returned, so that the loader reads either.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from collections.abc import Callable, Mapping
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


@dataclass(frozen=True)
class Archive:
    """One data set as its publisher ships it (`url`) and as the mirror holds it (`mirror`).

    The two hold the same data, not the same bytes. The official file is checked
    against `sha256`, else `md5` (whatever the publisher or a well-known loader
    pins); where neither is known (GitHub's archive of a commit), the `check`
    given to `fetch_archive` verifies the content.
    """

    relpath: str  # the official file, under data/raw/
    url: str
    sha256: str | None
    md5: str | None
    mirror: Mapping[str, str]  # mirror relpath -> sha256; copied to the same relpath in data/raw/


@dataclass(frozen=True)
class Fetched:
    origin: str  # "official" or "mirror"
    paths: dict[str, Path]  # relpath -> verified local file
    sources: dict[str, str]  # relpath -> sha256, for RawSplits.sources


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
        return _copy_from_mirror(mirror, remote.relpath, remote.sha256, target)
    return _download(
        remote.urls,
        remote.md5,
        target,
        lambda path: verify(path, remote.sha256, fix="Delete data/raw/ and download again."),
    )


def fetch_archive(
    archive: Archive, raw_dir: Path, check: Callable[[Path], None] | None = None
) -> Fetched:
    """Verified local copies of the mirror's files (when CONVREC_DATA_MIRROR is set), else of
    the official file.

    `check(path)` inspects an official file's content and raises a ConvrecError
    if it is wrong; it runs whenever the official file is used.
    """
    mirror = mirror_root()
    if mirror is not None:
        paths = {}
        for relpath, sha256 in archive.mirror.items():
            target = raw_dir / relpath
            if not (target.is_file() and digest(target) == sha256):
                _copy_from_mirror(mirror, relpath, sha256, target)
            paths[relpath] = target
        return Fetched("mirror", paths, dict(archive.mirror))

    target = raw_dir / archive.relpath

    def verify_official(path: Path) -> None:
        fix = f"Delete {target} and download it again."
        if archive.sha256 is not None:
            verify(path, archive.sha256, fix=fix)
        elif archive.md5 is not None and (actual := digest(path, "md5")) != archive.md5:
            raise ConvrecError(
                f"checksum mismatch for {path}: md5 {actual[:16]}..., expected "
                f"{archive.md5[:16]}...; the file is corrupt or not the official release. {fix}"
            )
        if check is not None:
            check(path)

    if target.is_file():
        try:
            verify_official(target)
        except ConvrecError:
            target.unlink()  # a stale or broken copy of ours: download it again
    if not target.is_file():
        _download((archive.url,), archive.md5, target, verify_official)
    sha256 = archive.sha256 or digest(target)
    return Fetched("official", {archive.relpath: target}, {archive.relpath: sha256})


def _copy_from_mirror(mirror: Path, relpath: str, sha256: str, target: Path) -> Path:
    source = mirror / relpath
    if not source.is_file():
        raise ConvrecError(
            f"{source} is missing from the mirror {MIRROR_ENV}={mirror}; "
            f"add the file there or unset {MIRROR_ENV} to download it"
        )
    verify(source, sha256, fix=f"Replace it in the mirror {mirror}.")
    _install(source, target, copy=True)
    return target


def _download(
    urls: tuple[str, ...], md5: str | None, target: Path, verify_file: Callable[[Path], None]
) -> Path:
    errors = []
    with tempfile.TemporaryDirectory(dir=_parent(target)) as tmp:
        for url in urls:
            try:
                download_url(url, root=tmp, filename=target.name, md5=md5 or None)
            except Exception as err:  # noqa: BLE001 - every mirror gets its chance
                errors.append(f"{url}: {err}")
                continue
            downloaded = Path(tmp) / target.name
            verify_file(downloaded)
            _install(downloaded, target, copy=False)
            return target
    raise ConvrecError(
        f"could not download {target} ({'; '.join(errors)}); check the network, "
        f"or set {MIRROR_ENV} to a folder that mirrors the data"
    )


def download_url(url: str, root: str, filename: str, md5: str | None = None) -> Path:
    """Download `url` to root/filename with a progress bar, following redirects; check the md5
    the publisher gives. (torchvision's helper did this; with torchvision installed,
    torchmetrics imports it, models and ops included, into every training process.)"""
    from tqdm import tqdm

    path = Path(root) / filename
    request = urllib.request.Request(url, headers={"User-Agent": "convrec"})
    with urllib.request.urlopen(request, timeout=60) as response, open(path, "wb") as out:
        size = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=size, unit="B", unit_scale=True, desc=filename) as bar:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                bar.update(len(chunk))
    if md5 is not None and (actual := digest(path, "md5")) != md5:
        raise ConvrecError(f"{url} gave a file whose md5 is {actual}, not {md5}")
    return path


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
