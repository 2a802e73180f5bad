"""The `image_folder` source kind: a user's images in one subfolder per class (torchvision's
ImageFolder layout), any sizes, converted to one size and channel count.

    # conf/task/my_photos.yaml
    defaults: [/source/image_folder@_here_, _self_]
    name: my_photos
    source:
      train: data/user/photos/train   # <class>/<image>.png|jpg|...; relative or absolute
      test: data/user/photos/test     # optional: else a seeded, stratified test_fraction
      image_size: [64, 64]            # height, width every image is resized to
      channels: 3                     # 3: RGB, 1: grey

Images are stored as uint8 (a quarter of float32's memory) and standardised per channel with
the train split's statistics when a batch is served, as MNIST's are. A set whose tensors would
exceed `max_gigabytes` is refused before any image is read, saying how big it would be.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from convrec.data.checksums import digest
from convrec.data.contract import RawSplits, Split
from convrec.data.kinds import KINDS, read_splits
from convrec.data.labels import encode_labels, majority_baseline
from convrec.errors import ConvrecError
from convrec.paths import project_root

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@KINDS.register("image_folder")
def image_folder(cfg: DictConfig, raw_dir: Path) -> RawSplits:
    source = cfg.source
    height, width = (int(v) for v in source.image_size)
    channels = int(source.channels)
    if channels not in (1, 3) or height < 1 or width < 1:
        raise ConvrecError(f"task {cfg.name}: source.channels must be 1 or 3 and image_size "
                           f"two sizes >= 1 (got {channels}, {list(source.image_size)})")
    train, test, paths = read_splits(cfg, (), list_images)  # files, not yet their pixels
    count = len(train[0]) + len(test[0])
    gigabytes = count * channels * height * width / 1e9
    if gigabytes > float(source.max_gigabytes):
        raise ConvrecError(f"task {cfg.name}: {count} images of {channels}x{height}x{width} "
                           f"would take {gigabytes:.1f} GB in memory, above source.max_gigabytes="
                           f"{source.max_gigabytes}; lower source.image_size or raise the limit")
    class_names, train_y, test_y = encode_labels(train[1], test[1], str(paths[source.train]))

    def pixels(files: list[Path]) -> torch.Tensor:
        return torch.from_numpy(np.stack([read_image(f, height, width, channels) for f in files]))

    # every image's checksum, named as the task's YAML reaches it (from the project root)
    root = project_root()
    sources = {(f.relative_to(root) if f.is_relative_to(root) else f).as_posix(): digest(f)
               for f in (*train[0], *test[0])}  # fmt: skip
    return RawSplits(
        train=Split(pixels(train[0]), train_y),
        test=Split(pixels(test[0]), test_y),
        input_kind="image",
        class_names=class_names,
        baseline=majority_baseline(train_y, test_y, class_names),
        sources=sources,
    )


def list_images(folder: Path) -> tuple[list[Path], list[str]]:
    """The image files of `folder`/<class>/ (in sorted order) and their class names."""
    if not folder.is_dir():
        raise ConvrecError(f"{folder} is not a folder; an image task reads a folder with one "
                           "subfolder of images per class")  # fmt: skip
    files, labels = [], []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        images = sorted(p for p in class_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        files += images
        labels += [class_dir.name] * len(images)
    if not files:
        raise ConvrecError(f"{folder} holds no images in class subfolders "
                           f"({', '.join(IMAGE_SUFFIXES)}); put each class's images in "
                           f"{folder}/<class>/")  # fmt: skip
    return files, labels


def read_image(path: Path, height: int, width: int, channels: int) -> np.ndarray:
    """(channels, height, width) uint8, resized with bilinear filtering."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB")
            image = image.resize((width, height), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ConvrecError(f"{path} is not a readable image ({err}); remove or replace "
                           "it") from None  # fmt: skip
    return array[None] if channels == 1 else array.transpose(2, 0, 1)
