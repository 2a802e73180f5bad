"""MNIST and Fashion-MNIST: the four idx files of each, torchvision's layout."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from convrec.data.contract import RawSplits, Split
from convrec.data.sources import RemoteFile, fetch
from convrec.data.tasks import TASKS, split_rng

MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
FASHION_URLS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)

# name: (sha256, md5); md5 as published (torchvision's MNIST.resources), sha256 of the same bytes
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": (
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    ),
    "train-labels-idx1-ubyte.gz": (
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "d53e105ee54ea40749a09fcbcd1e9432",
    ),
    "t10k-images-idx3-ubyte.gz": (
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "9fb629c4189551a2d022fa330f9573f3",
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        "ec29112dd5afa0611ce80d1b7f02629c",
    ),
}
FASHION_FILES = {
    "train-images-idx3-ubyte.gz": (
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    ),
    "train-labels-idx1-ubyte.gz": (
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "25c81989df183df01b3e8a0aad5dffbe",
    ),
    "t10k-images-idx3-ubyte.gz": (
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "bef4ecab320f06d8554ea6380940ec79",
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        "bb300cfdad3c16e7a12a480ee83cd310",
    ),
}
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip


def read_idx(path: Path) -> np.ndarray:
    """Parse an idx file (unsigned bytes): 2 zero bytes, type, rank, then big-endian dims."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    if data[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path} is not an idx file of unsigned bytes")
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def idx_arrays(
    raw_dir: Path, folder: str = "MNIST", files: dict = MNIST_FILES, urls=MNIST_URLS
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The four verified idx files as arrays ("train-images", ...), and their sha256 sources.

    MNIST by default: the procedural digit tasks (multidigit, moving digits, pixel
    sequences) draw from the same verified copies the mnist task uses.
    """
    arrays, sources = {}, {}
    for name, (sha256, md5) in files.items():
        remote = RemoteFile(f"{folder}/raw/{name}", sha256, md5, tuple(u + name for u in urls))
        arrays[name.split("-idx")[0]] = read_idx(fetch(remote, raw_dir))
        sources[remote.relpath] = sha256
    return arrays, sources


def digit_splits(raw_dir: Path, seed: int, sizes: tuple[int, int], make):
    """Generate a train and a test split from MNIST digits: `make(images, labels, n, rng)`
    draws n samples from the training digits for train and the test digits for test, each
    split from its own seeded stream. Returns ({"train": .., "test": ..}, sources)."""
    arrays, sources = idx_arrays(raw_dir)
    splits = {}
    for split, prefix, n in (("train", "train", sizes[0]), ("test", "t10k", sizes[1])):
        labels = arrays[f"{prefix}-labels"].astype(np.int64)
        splits[split] = make(arrays[f"{prefix}-images"], labels, n, split_rng(seed, split))
    return splits, sources


def shrink(images: np.ndarray, factor: int) -> np.ndarray:
    """Average `factor` x `factor` pixel blocks of the last two axes (uint8 in, uint8 out).

    The procedural digit tasks draw at MNIST's resolution, then shrink, so that their
    CPU-sized profile convolves a quarter of the pixels.
    """
    if factor == 1:
        return images
    *lead, h, w = images.shape
    blocks = images.reshape(*lead, h // factor, factor, w // factor, factor)
    return np.rint(blocks.mean(axis=(-3, -1))).astype(np.uint8)


def _load(folder: str, files: dict, urls: tuple[str, ...], raw_dir: Path, classes) -> RawSplits:
    arrays, sources = idx_arrays(raw_dir, folder, files, urls)

    def images(key: str) -> torch.Tensor:
        return torch.from_numpy(arrays[key].copy()).unsqueeze(1)  # (N, 1, 28, 28) uint8

    def labels(key: str) -> torch.Tensor:
        return torch.from_numpy(arrays[key].astype(np.int64))

    return RawSplits(
        train=Split(images("train-images"), labels("train-labels")),
        test=Split(images("t10k-images"), labels("t10k-labels")),
        input_kind="image",
        class_names=list(classes),
        sources=sources,
    )


@TASKS.register("mnist")
def mnist(cfg: DictConfig, raw_dir: Path) -> RawSplits:
    return _load("MNIST", MNIST_FILES, MNIST_URLS, raw_dir, [str(d) for d in range(10)])


@TASKS.register("fashion_mnist")
def fashion_mnist(cfg: DictConfig, raw_dir: Path) -> RawSplits:
    return _load("FashionMNIST", FASHION_FILES, FASHION_URLS, raw_dir, FASHION_CLASSES)
