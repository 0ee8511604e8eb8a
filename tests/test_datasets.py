"""The dataset group's sources: digits (bundled), CIFAR-10's binary layout, an image folder,
an npz and a Python hook, each on a generated copy, and what each refuses by name."""

import hashlib
import io
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from rlnas.core.registry import DATASETS
from rlnas.data import datasets
from rlnas.data.datasets import CIFAR10_DIR, CIFAR10_TEST, CIFAR10_TRAIN
from rlnas.data.sources import load_source


def load_dataset(name: str, **settings):
    return load_source(DATASETS.config(name, settings)).load()


def write_fake_cifar(folder, records=6, seed=0):
    """Files of CIFAR-10's binary distribution, with ``records`` random images each."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    content = {}
    for name in (*CIFAR10_TRAIN, CIFAR10_TEST):
        labels = rng.integers(0, 10, records, dtype=np.uint8)
        pixels = rng.integers(0, 256, (records, 3, 32, 32), dtype=np.uint8)
        rows = np.concatenate([labels[:, None], pixels.reshape(records, -1)], axis=1)
        (folder / name).write_bytes(rows.tobytes())
        content[name] = (labels, pixels)
    return content


def test_digits_splits():
    data = load_dataset("digits")
    assert data.input_shape == (1, 8, 8) and data.num_classes == 10
    assert (len(data.train.y), len(data.valid.y), len(data.test.y)) == (1078, 359, 360)


def test_cifar10_binary_layout_on_a_generated_set(tmp_path):
    content = write_fake_cifar(tmp_path / CIFAR10_DIR)
    data = load_dataset("cifar10", root=str(tmp_path))
    assert data.input_shape == (3, 32, 32) and data.num_classes == 10
    assert (len(data.train.y), len(data.valid.y), len(data.test.y)) == (15, 15, 6)  # NB201's cifar10-valid halves
    labels, pixels = content[CIFAR10_TEST]
    assert data.test.y.tolist() == labels.tolist()
    # Red plane first, row-major; normalised per channel with CIFAR-10's mean and std.
    red = (pixels[2, 0, 4, 7] / 255.0 - 0.4914) / 0.2470
    assert data.test.x[2, 0, 4, 7].item() == pytest.approx(red, abs=1e-5)
    blue = (pixels[5, 2, 31, 0] / 255.0 - 0.4465) / 0.2616
    assert data.test.x[5, 2, 31, 0].item() == pytest.approx(blue, abs=1e-5)
    train_labels = np.concatenate([content[name][0] for name in CIFAR10_TRAIN])
    assert sorted(data.train.y.tolist() + data.valid.y.tolist()) == sorted(train_labels.tolist())


def test_cifar10_missing_or_garbled(tmp_path):
    with pytest.raises(FileNotFoundError, match="CIFAR-10 not found .*download=true"):
        load_dataset("cifar10", root=str(tmp_path))
    write_fake_cifar(tmp_path / CIFAR10_DIR)
    (tmp_path / CIFAR10_DIR / CIFAR10_TEST).write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="garbled: 100 bytes is not a whole number of 3,073-byte records"):
        load_dataset("cifar10", root=str(tmp_path))
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'; available datasets: cifar10, digits, folder"):
        load_dataset("imagenet")


def test_cifar10_download_checks_the_archive(tmp_path, monkeypatch):
    write_fake_cifar(tmp_path / "src" / CIFAR10_DIR)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(tmp_path / "src" / CIFAR10_DIR, arcname=CIFAR10_DIR)
    archive = tmp_path / "cifar-10-binary.tar.gz"
    archive.write_bytes(buffer.getvalue())
    monkeypatch.setattr(datasets, "CIFAR10_URL", archive.as_uri())
    with pytest.raises(ValueError, match="has MD5 .* expected"):
        load_dataset("cifar10", root=str(tmp_path / "data"), download=True)
    monkeypatch.setattr(datasets, "CIFAR10_MD5", hashlib.md5(buffer.getvalue()).hexdigest())
    data = load_dataset("cifar10", root=str(tmp_path / "data"), download=True)
    assert len(data.test.y) == 6 and (tmp_path / "data" / CIFAR10_DIR / CIFAR10_TEST).is_file()


def png_tree(root, sizes):
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("val", 2)):
        for label in ("cat", "dog"):
            (root / split / label).mkdir(parents=True)
            for i in range(n):
                size = sizes(split, label, i)
                pixels = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / label / f"{i}.png")


def test_a_folder_of_pngs_loads_with_its_classes_and_splits(tmp_path):
    png_tree(tmp_path, lambda *_: (6, 5))
    data = load_dataset("folder", path=str(tmp_path))
    assert data.num_classes == 2 and data.input_shape == (3, 6, 5)
    assert len(data.valid.y) == 4 and len(data.train.y) + len(data.test.y) == 12  # val/ given, test drawn
    assert abs(float(data.train.x.mean())) < 0.2  # standardised with the training images' statistics


def test_an_npz_with_its_own_splits_and_a_python_hook_load(tmp_path):
    x, y = np.random.default_rng(0).normal(size=(50, 7)).astype(np.float32), np.arange(50) % 3
    np.savez(tmp_path / "d.npz", x_train=x[:30], y_train=y[:30], x_valid=x[30:40], y_valid=y[30:40],
             x_test=x[40:], y_test=y[40:])
    data = load_dataset("npz", path=str(tmp_path / "d.npz"))
    assert (len(data.train.y), len(data.valid.y), len(data.test.y), data.num_classes) == (30, 10, 10, 3)
    assert torch.equal(data.valid.x, torch.as_tensor(x[30:40]))
    wine = load_dataset("python", fn="examples.mlp_space:wine", split_seed=1)
    assert (wine.input_shape, wine.num_classes, len(wine.train.y) + len(wine.valid.y) + len(wine.test.y)) == \
        ((13,), 3, 178)
