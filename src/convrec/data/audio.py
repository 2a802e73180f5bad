"""Speech to features: 16-bit PCM wav bytes to log-mel spectrograms (or MFCCs).

Log-mel is the default input: a (n_mels, frames) image whose rows are
frequency bands, which suits 1-D CNNs and RNNs (bands as channels, frames as
steps) and 2-D CNNs alike, and which keeps the information that MFCC's DCT
compresses away. The filterbank is built here (HTK's mel scale,
mel = 2595 log10(1 + f / 700); each band a triangle in Hz of peak 1 that
spans the centres of its two neighbours, unnormalised), so no audio library is
needed.
"""

from __future__ import annotations

import io
import math
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from convrec.errors import ConvrecError

LOG_FLOOR = 1e-6  # log(mel + floor): silence gives log(1e-6) = -13.8, never -inf


@dataclass(frozen=True)
class MelSettings:
    """STFT and filterbank settings; the defaults suit 8 kHz speech."""

    sample_rate: int = 8000
    n_fft: int = 256  # 32 ms window at 8 kHz: 129 frequency bins, 31.25 Hz apart
    hop: int = 80  # 10 ms between frames
    n_mels: int = 40
    f_min: float = 0.0
    f_max: float | None = None  # None: Nyquist


def read_wav(data: bytes, name: str, sample_rate: int) -> np.ndarray:
    """Mono 16-bit PCM wav bytes as float32 samples in [-1, 1)."""
    with wave.open(io.BytesIO(data)) as wav:
        layout = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate())
        if layout != (1, 2, sample_rate):
            raise ConvrecError(
                f"{name} is (channels, bytes per sample, rate) {layout}, expected "
                f"(1, 2, {sample_rate}); replace the file with the data set's original"
            )
        pcm = wav.readframes(wav.getnframes())
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(settings: MelSettings) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) float32 weights: band b is a triangle over the STFT bins.

    The n_mels + 2 edges are evenly spaced in mel between f_min and f_max; band b
    rises from edge b to a peak of 1 at edge b + 1 and falls to 0 at edge b + 2.
    """
    f_max = settings.f_max if settings.f_max is not None else settings.sample_rate / 2
    edges = mel_to_hz(np.linspace(hz_to_mel(settings.f_min), hz_to_mel(f_max), settings.n_mels + 2))
    bins = np.linspace(0.0, settings.sample_rate / 2, settings.n_fft // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    return torch.from_numpy(np.clip(np.minimum(rising, falling), 0.0, None).astype(np.float32))


def band_centres(settings: MelSettings) -> np.ndarray:
    """The frequency (Hz) where each band of `mel_filterbank` peaks."""
    f_max = settings.f_max if settings.f_max is not None else settings.sample_rate / 2
    mels = np.linspace(hz_to_mel(settings.f_min), hz_to_mel(f_max), settings.n_mels + 2)
    return mel_to_hz(mels[1:-1])


def log_mel(samples: torch.Tensor, settings: MelSettings, filterbank: torch.Tensor) -> torch.Tensor:
    """(n_mels, 1 + len // hop) log-mel power spectrogram of a 1-D float signal.

    Frames are centred (the signal is zero-padded by n_fft // 2 on each side), so
    frame t describes the 32 ms around sample t * hop.
    """
    spectrum = torch.stft(
        samples,
        n_fft=settings.n_fft,
        hop_length=settings.hop,
        window=torch.hann_window(settings.n_fft),
        center=True,
        pad_mode="constant",  # "reflect" fails on clips shorter than half a window
        return_complex=True,
    )
    power = spectrum.real.square() + spectrum.imag.square()  # (n_fft // 2 + 1, frames)
    return torch.log(filterbank @ power + LOG_FLOOR)


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread: a clip's STFT is too small to share, and on a busy machine
    torch's thread pool made 3,000 of them take minutes instead of a second."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def dct_matrix(n_out: int, n_in: int) -> torch.Tensor:
    """(n_out, n_in) orthonormal DCT-II: MFCCs are dct_matrix(n_mfcc, n_mels) @ log-mel."""
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    matrix = np.cos(math.pi / n_in * (n + 0.5) * k) * math.sqrt(2.0 / n_in)
    matrix[0] /= math.sqrt(2.0)
    return torch.from_numpy(matrix.astype(np.float32))
