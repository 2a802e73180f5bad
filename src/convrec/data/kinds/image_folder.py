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
from convrec.data.kinds import KINDS, source_file, stratified_split, two_classes
from convrec.errors import ConvrecError
from convrec.paths import project_root

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@KINDS.register("image_folder")
def image_folder(cfg: DictConfig, raw_dir: Path) -> RawSplits:
    source, root = cfg.source, project_root()
    height, width = (int(v) for v in source.image_size)
    channels = int(source.channels)
    if channels not in (1, 3) or height < 1 or width < 1:
        raise ConvrecError(f"task {cfg.name}: source.channels must be 1 or 3 and image_size "
                           f"two sizes >= 1 (got {channels}, {list(source.image_size)})")
    folders = {"train": source_file(source.train, "source.train", cfg.name, root, ())}
    if source.get("test"):
        folders["test"] = source_file(source.test, "source.test", cfg.name, root, ())
    listed = {split: list_images(folder) for split, folder in folders.items()}
    count = sum(len(files) for files, _ in listed.values())
    gigabytes = count * channels * height * width / 1e9
    if gigabytes > float(source.max_gigabytes):
        raise ConvrecError(f"task {cfg.name}: {count} images of {channels}x{height}x{width} "
                           f"would take {gigabytes:.1f} GB in memory, above source.max_gigabytes="
                           f"{source.max_gigabytes}; lower source.image_size or raise the limit")
    train = listed["train"]
    if "test" in listed:
        test = listed["test"]
    else:
        train, test = stratified_split(train, source.test_fraction, int(cfg.split_seed),
                                       str(folders["train"]))  # fmt: skip
    two_classes(train[1], folders["train"])
    class_names = sorted(set(train[1]))
    unseen = sorted(set(test[1]) - set(class_names))
    if unseen:
        raise ConvrecError(f"{folders.get('test')}: classes {unseen} have no folder in the "
                           f"train split {folders['train']}; every class needs training images")
    index = {name: i for i, name in enumerate(class_names)}

    def split(files: list[Path], labels: list[str]) -> Split:
        x = torch.from_numpy(np.stack([read_image(f, height, width, channels) for f in files]))
        return Split(x, torch.tensor([index[label] for label in labels], dtype=torch.int64))

    train_split, test_split = split(*train), split(*test)
    majority = int(torch.bincount(train_split.y, minlength=len(class_names)).argmax())
    # every image's checksum, named as the task's YAML reaches it (from the project root)
    sources = {(f.relative_to(root) if f.is_relative_to(root) else f).as_posix(): digest(f)
               for files, _ in listed.values() for f in files}  # fmt: skip
    return RawSplits(
        train=train_split,
        test=test_split,
        input_kind="image",
        class_names=class_names,
        baseline={
            "value": round(100.0 * float((test_split.y == majority).float().mean()), 2),
            "what": f"accuracy (%) of always predicting the train split's majority class "
            f"{class_names[majority]!r}",
        },
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
