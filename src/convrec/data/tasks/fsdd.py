"""Free Spoken Digit Dataset (Jackson et al., github.com/Jakobovski/free-spoken-digit-dataset).

3,000 clips of 6 speakers saying each digit 50 times, 8 kHz mono 16-bit,
named `{digit}_{speaker}_{index}.wav`. The dataset's own split: indices 0-4
are test (300 clips: 5 per speaker and digit), 5-49 train (2,700).

The official source is GitHub's archive of the pinned commit, which carries no
published digest: its recordings are checked against a digest of their names
and bytes, taken from the mirror (the same commit's `recordings/` folder; one
clip also checked against a digest published with that commit).
"""

from __future__ import annotations

import hashlib
import re
import tarfile
from pathlib import Path

import torch
from omegaconf import DictConfig

from convrec.data.audio import (
    MelSettings,
    dct_matrix,
    log_mel,
    mel_filterbank,
    one_thread,
    read_wav,
)
from convrec.data.contract import RawSplits, Split
from convrec.data.sources import Archive, fetch_archive
from convrec.data.tasks import TASKS, by_profile
from convrec.errors import ConvrecError

COMMIT = "26eb9aaf76e81b692f806f9140c2d2777410d7a1"
FSDD = Archive(
    relpath=f"FSDD/free-spoken-digit-dataset-{COMMIT}.tar.gz",
    url=f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/{COMMIT}.tar.gz",
    sha256=None,  # GitHub does not promise byte-stable archives; `check_recordings` verifies
    md5=None,
    mirror={
        "FSDD/fsdd_recordings.tar.gz": (
            "1bfa5d60a5a1946f182a13f35dd51f1e6edf046cda40746752b17efed6c7fc95"
        )
    },
)
RECORDINGS = 3000
RECORDINGS_DIGEST = "dbd573d7cafe79c4b49f65718115e1304e24e067fa39eff18a660dc6cb9c360f"
RECORDING = re.compile(r"(?:^|/)recordings/(\d)_([^/_]+)_(\d+)\.wav$")
TEST_INDICES = range(5)  # the dataset's README: recordings 0-4 are the test set
FEATURES = ("log_mel", "mfcc")


def parse_name(name: str) -> tuple[int, str, int]:
    """Digit, speaker and index of a file name: "7_jackson_32.wav" -> (7, "jackson", 32)."""
    digit, speaker, index = name.removesuffix(".wav").split("_")
    return int(digit), speaker, int(index)


def read_recordings(archive: Path) -> dict[str, bytes]:
    """{file name: wav bytes} of every `recordings/*.wav` in a tar, streamed."""
    recordings = {}
    with tarfile.open(archive, "r|*") as tar:
        for member in tar:
            if member.isfile() and RECORDING.search(member.name):
                recordings[member.name.rsplit("/", 1)[1]] = tar.extractfile(member).read()
    return recordings


def recordings_digest(recordings: dict[str, bytes]) -> str:
    """sha256 of the lines "<name> <sha256 of its bytes>", sorted by name."""
    lines = "".join(
        f"{name} {hashlib.sha256(data).hexdigest()}\n" for name, data in sorted(recordings.items())
    )
    return hashlib.sha256(lines.encode()).hexdigest()


def check_recordings(archive: Path) -> None:
    recordings = read_recordings(archive)
    if len(recordings) != RECORDINGS or recordings_digest(recordings) != RECORDINGS_DIGEST:
        raise ConvrecError(
            f"{archive} holds {len(recordings)} recordings that are not FSDD's at commit "
            f"{COMMIT[:8]} ({RECORDINGS} expected, digest mismatch); delete it and fetch again"
        )


def features(
    recordings: dict[str, bytes], settings: MelSettings, kind: str, n_mfcc: int, max_frames: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C, T) float32 features right-padded with zeros to the longest clip (at most
    `max_frames`; longer clips keep their first `max_frames`), and (N,) int64 lengths."""
    if kind not in FEATURES:
        raise ConvrecError(f"task.features={kind!r} is unknown; use one of {', '.join(FEATURES)}")
    filterbank = mel_filterbank(settings)
    dct = dct_matrix(n_mfcc, settings.n_mels) if kind == "mfcc" else None
    clips = []
    with one_thread():
        for name, data in recordings.items():
            samples = torch.from_numpy(read_wav(data, name, settings.sample_rate))
            frames = log_mel(samples, settings, filterbank)[:, :max_frames]
            clips.append(dct @ frames if dct is not None else frames)
    lengths = torch.tensor([clip.shape[1] for clip in clips], dtype=torch.int64)
    x = torch.zeros(len(clips), clips[0].shape[0], int(lengths.max()))
    for row, clip in zip(x, clips, strict=True):
        row[:, : clip.shape[1]] = clip
    return x, lengths


@TASKS.register("fsdd")
def fsdd(cfg: DictConfig, raw_dir: Path) -> RawSplits:
    fetched = fetch_archive(FSDD, raw_dir, check=check_recordings)
    (path,) = fetched.paths.values()
    recordings = read_recordings(path)
    settings = MelSettings(
        sample_rate=int(cfg.sample_rate),
        n_fft=int(cfg.n_fft),
        hop=int(cfg.hop),
        n_mels=int(cfg.n_mels),
    )
    # One order from either source; index first, so that the first N clips of a split
    # (task.train_limit, task.test_limit) hold every speaker and digit.
    names = sorted(recordings, key=lambda name: parse_name(name)[::-1])
    x, lengths = features(
        {name: recordings[name] for name in names},
        settings,
        str(cfg.features),
        int(cfg.n_mfcc),
        int(by_profile(cfg.max_frames, cfg.profile)),
    )
    digits = torch.tensor([parse_name(name)[0] for name in names], dtype=torch.int64)
    is_test = torch.tensor([parse_name(name)[2] in TEST_INDICES for name in names])
    return RawSplits(
        train=Split(x[~is_test], digits[~is_test], lengths=lengths[~is_test]),
        test=Split(x[is_test], digits[is_test], lengths=lengths[is_test]),
        input_kind="sequence",
        class_names=[str(d) for d in range(10)],
        normalize=True,
        image_view=True,
        baseline={"value": 10.0, "what": "accuracy (%) of one digit for every clip"},
        sources=fetched.sources,
    )
