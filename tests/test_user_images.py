"""A user's own images (source kind `image_folder`): a folder of class subfolders and one YAML
file in conf/task/, composed for real from a copy of conf/ (the `user_conf` fixture), prepared
and trained through the code the stages run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from convrec.compose import compose_config
from convrec.data.contract import load_meta, load_split
from convrec.data.prepare import prepare_task
from convrec.errors import ConvrecError
from convrec.training import train


def _photos(folder, per_class: int) -> None:
    """Bright and dark images of several sizes and modes (PNG and JPEG, RGB and grey)."""
    rng = np.random.default_rng(0)
    for label, level in (("bright", 200), ("dark", 40)):
        (folder / label).mkdir(parents=True)
        for i in range(per_class):
            size = (20 + i % 3 * 7, 16 + i % 2 * 9)
            pixels = np.clip(level + rng.normal(0, 20, (size[1], size[0], 3)), 0, 255)
            image = Image.fromarray(pixels.astype(np.uint8))
            if i % 4 == 3:
                image.convert("L").save(folder / label / f"{i}.jpg")
            else:
                image.save(folder / label / f"{i}.png")
    (folder / "bright" / "notes.txt").write_text("not an image: skipped, as ImageFolder does")


def test_a_folder_of_class_subfolders_prepares_as_uint8_images_and_trains(user_conf, tmp_path):
    _photos(tmp_path / "data" / "photos", per_class=40)
    task = user_conf("my_photos", """\
        defaults: [/source/image_folder@_here_, _self_]
        name: my_photos
        source:
          train: data/photos
          image_size: [12, 10]
        batch_size: 8
        """)  # fmt: skip
    prepared = prepare_task(task, tmp_path / "prepared", tmp_path / "raw")
    meta = load_meta(prepared)
    assert meta["input_kind"] == "image" and meta["input_shape"] == [3, 12, 10]
    assert meta["class_names"] == ["bright", "dark"]
    assert meta["split_sizes"] == {"train": 58, "val": 6, "test": 16}
    assert len(meta["sources"]) == 80 and "data/photos/bright/0.png" in meta["sources"]
    test = load_split(prepared, "test")
    assert test.x.dtype == torch.uint8 and torch.bincount(test.y).tolist() == [8, 8]

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = compose_config(tmp_path / "conf", "train", [
        "task=my_photos", "model=cnn", "profile=tiny", f"paths.prepared={tmp_path / 'prepared'}",
        f"tracking.uri={uri}",
    ])  # fmt: skip
    train(cfg)
    metrics = json.loads((tmp_path / "results/my_photos/cnn/metrics.json").read_text())
    assert metrics["test_samples"] == 16


def _refused(user_conf, tmp_path, message, **source) -> None:
    lines = "".join(f"          {k}: {v}\n" for k, v in source.items())
    task = user_conf("bad_photos", "defaults: [/source/image_folder@_here_, _self_]\n"
                     "name: bad_photos\nsource:\n  train: data/photos\n"
                     + lines.replace("          ", "  "))  # fmt: skip
    with pytest.raises(ConvrecError, match=message) as refused:
        prepare_task(task, tmp_path / "prepared", tmp_path / "raw")
    assert "\n" not in str(refused.value) and not (tmp_path / "prepared").exists()


def test_an_unreadable_image_is_named(user_conf, tmp_path):
    _photos(tmp_path / "data" / "photos", per_class=4)
    (tmp_path / "data/photos/dark/broken.png").write_bytes(b"not a png")
    _refused(user_conf, tmp_path, r"dark/broken.png is not a readable image")


def test_a_set_too_big_for_memory_is_refused_before_any_image_is_read(user_conf, tmp_path):
    _photos(tmp_path / "data" / "photos", per_class=4)
    _refused(user_conf, tmp_path, r"8 images of 3x4096x4096 would take 0.4 GB in memory, above "
             r"source.max_gigabytes=0.1", image_size="[4096, 4096]", max_gigabytes=0.1)


def test_a_folder_without_class_subfolders_of_images_says_how_to_lay_it_out(user_conf, tmp_path):
    (tmp_path / "data" / "photos").mkdir(parents=True)
    _refused(user_conf, tmp_path, r"holds no images in class subfolders")
