import io
import math
import shutil
import tarfile
import wave
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from conftest import compose_config
from convrec.data import sources
from convrec.data.audio import (
    LOG_FLOOR,
    MelSettings,
    band_centres,
    dct_matrix,
    log_mel,
    mel_filterbank,
    read_wav,
)
from convrec.data.tasks import fsdd as fsdd_module
from convrec.errors import ConvrecError

SETTINGS = MelSettings()  # 8 kHz, n_fft 256, hop 80, 40 bands: the task's defaults


def _task(**overrides):
    task = compose_config("prepare", ["task=fsdd"]).task
    return OmegaConf.merge(OmegaConf.to_container(task), {"profile": "quick", **overrides})


def _wav(samples: np.ndarray, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1), wav.setsampwidth(2), wav.setframerate(rate)
        wav.writeframes((samples * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def _tone(hz: float, seconds: float = 1.0) -> torch.Tensor:
    t = np.arange(int(SETTINGS.sample_rate * seconds)) / SETTINGS.sample_rate
    return torch.from_numpy((0.5 * np.sin(2 * math.pi * hz * t)).astype(np.float32))


# Features


def test_filterbank_has_one_nonempty_triangle_per_band_in_mel_order():
    bank = mel_filterbank(SETTINGS)
    assert bank.shape == (40, 129) and bank.dtype == torch.float32
    assert bool((bank >= 0).all()) and bool((bank.sum(1) > 0).all())  # no empty band
    assert bool((bank.max(1).values <= 1).all())
    peaks = bank.argmax(1)
    assert bool((peaks[1:] >= peaks[:-1]).all())  # centres rise with the band index
    centres = band_centres(SETTINGS)
    assert centres[0] > 0 and centres[-1] < 4000
    assert np.diff(centres)[-1] > 4 * np.diff(centres)[0]  # mel: wider bands up high


@pytest.mark.parametrize("hz", [300.0, 1000.0, 3000.0])
def test_a_pure_tone_peaks_in_the_band_centred_on_it(hz):
    features = log_mel(_tone(hz), SETTINGS, mel_filterbank(SETTINGS))
    assert features.shape == (40, 1 + 8000 // 80)
    loudest = int(features.mean(1).argmax())
    nearest = int(np.abs(band_centres(SETTINGS) - hz).argmin())
    assert abs(loudest - nearest) <= 1


def test_silence_is_the_log_floor_and_short_clips_still_give_frames():
    features = log_mel(torch.zeros(100), SETTINGS, mel_filterbank(SETTINGS))
    assert features.shape == (40, 2)  # centred frames: 1 + 100 // 80
    assert torch.allclose(features, torch.full_like(features, math.log(LOG_FLOOR)))


def test_dct_is_orthonormal():
    dct = dct_matrix(40, 40)
    assert torch.allclose(dct @ dct.T, torch.eye(40), atol=1e-5)
    assert dct_matrix(13, 40).shape == (13, 40)


def test_read_wav_checks_the_layout():
    samples = np.array([0.0, 0.5, -0.5], dtype=np.float32)
    assert np.allclose(read_wav(_wav(samples), "x.wav", 8000), samples, atol=1e-4)
    with pytest.raises(ConvrecError, match=r"x.wav is .* \(1, 2, 16000\), expected \(1, 2, 8000\)"):
        read_wav(_wav(samples, rate=16000), "x.wav", 8000)


# The task


@pytest.fixture(scope="module")
def from_mirror(mirror, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVREC_DATA_MIRROR", str(mirror))
        return fsdd_module.fsdd(_task(), tmp_path_factory.mktemp("raw"))


def test_fsdd_split_shapes_and_lengths(from_mirror, mirror):
    raw = from_mirror
    assert raw.input_kind == "sequence" and raw.image_view and raw.normalize
    assert raw.train.x.shape == (2700, 40, 100) and raw.test.x.shape == (300, 40, 100)
    assert raw.train.x.dtype == torch.float32 and raw.train.lengths.dtype == torch.int64
    assert torch.bincount(raw.test.y).tolist() == [30] * 10
    assert torch.bincount(raw.train.y).tolist() == [270] * 10
    assert torch.bincount(raw.train.y[:60]).tolist() == [6] * 10  # any prefix mixes digits
    assert raw.class_names == [str(d) for d in range(10)]
    lengths = torch.cat([raw.train.lengths, raw.test.lengths])
    assert int(lengths.min()) >= 10 and int(lengths.max()) == 100  # 0.14 s clips and cut ones
    assert int((lengths == 100).sum()) >= 20
    x = torch.cat([raw.train.x, raw.test.x])
    padding = torch.arange(100)[None, :] >= lengths[:, None]
    assert bool((x.transpose(1, 2)[padding] == 0).all())  # right-padded with zeros
    assert bool((x.transpose(1, 2)[~padding] < 0).any())  # real frames hold log energies
    assert raw.sources == fsdd_module.FSDD.mirror


def test_the_test_split_is_indices_0_to_4_of_every_speaker_and_digit(mirror):
    names = fsdd_module.read_recordings(mirror / "FSDD/fsdd_recordings.tar.gz")
    test = [fsdd_module.parse_name(n) for n in names if fsdd_module.parse_name(n)[2] < 5]
    assert len(test) == 300
    assert set(Counter(speaker for _, speaker, _ in test).values()) == {50}  # 6 speakers
    assert set(Counter((digit, speaker) for digit, speaker, _ in test).values()) == {5}


def test_mfcc_features_are_a_setting(tmp_path, mirror, monkeypatch):
    monkeypatch.setenv("CONVREC_DATA_MIRROR", str(mirror))
    raw = fsdd_module.fsdd(_task(features="mfcc", max_frames=50), tmp_path / "raw")
    assert raw.train.x.shape == (2700, 13, 50)
    with pytest.raises(ConvrecError, match="task.features='spectrogram' is unknown"):
        fsdd_module.fsdd(_task(features="spectrogram"), tmp_path / "raw")


# The official archive: GitHub's tarball of the commit, checked by its recordings' content


def _github_tar(recordings: dict[str, bytes], path: Path) -> Path:
    top = f"free-spoken-digit-dataset-{fsdd_module.COMMIT}"
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for name, data in [("README.md", b"# FSDD"), *sorted(recordings.items())]:
            folder = "" if name == "README.md" else "recordings/"
            info = tarfile.TarInfo(f"{top}/{folder}{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _serve(monkeypatch, url: str, path: Path) -> None:
    def download_url(url_asked, root, filename, md5=None):
        assert url_asked == url
        shutil.copyfile(path, Path(root) / filename)

    monkeypatch.setattr(sources, "download_url", download_url)
    monkeypatch.delenv("CONVREC_DATA_MIRROR", raising=False)


def test_the_official_archive_gives_the_mirror_tensors(tmp_path, mirror, monkeypatch, from_mirror):
    recordings = fsdd_module.read_recordings(mirror / "FSDD/fsdd_recordings.tar.gz")
    _serve(monkeypatch, fsdd_module.FSDD.url, _github_tar(recordings, tmp_path / "served.tar.gz"))
    raw = fsdd_module.fsdd(_task(), tmp_path / "raw")
    assert list(raw.sources) == [fsdd_module.FSDD.relpath]
    assert torch.equal(raw.train.x, from_mirror.train.x) and torch.equal(
        raw.test.y, from_mirror.test.y
    )


def test_an_official_archive_with_other_recordings_is_refused(tmp_path, mirror, monkeypatch):
    recordings = fsdd_module.read_recordings(mirror / "FSDD/fsdd_recordings.tar.gz")
    recordings["0_george_0.wav"] = recordings["1_george_0.wav"]  # same count, other content
    _serve(monkeypatch, fsdd_module.FSDD.url, _github_tar(recordings, tmp_path / "bad.tar.gz"))
    with pytest.raises(
        ConvrecError, match="3000 recordings that are not FSDD's at commit 26eb9aaf"
    ):
        fsdd_module.fsdd(_task(), tmp_path / "raw")
    assert not (tmp_path / "raw" / fsdd_module.FSDD.relpath).exists()


def test_a_corrupt_mirror_archive_is_refused(tmp_path, monkeypatch):
    (tmp_path / "mirror/FSDD").mkdir(parents=True)
    (tmp_path / "mirror/FSDD/fsdd_recordings.tar.gz").write_bytes(b"\x1f\x8b broken")
    monkeypatch.setenv("CONVREC_DATA_MIRROR", str(tmp_path / "mirror"))
    with pytest.raises(ConvrecError, match="checksum mismatch for .*fsdd_recordings.tar.gz"):
        fsdd_module.fsdd(_task(), tmp_path / "raw")


def test_recordings_digest_depends_on_names_and_bytes():
    digest = fsdd_module.recordings_digest
    assert digest({"a.wav": b"1"}) != digest({"b.wav": b"1"}) != digest({"a.wav": b"2"})
