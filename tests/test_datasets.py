"""Dataset loaders: digits (bundled) and CIFAR-10's binary layout, on a generated copy."""

import hashlib
import io
import tarfile

import numpy as np
import pytest

from rlnas.data import datasets
from rlnas.data.datasets import CIFAR10_DIR, CIFAR10_TEST, CIFAR10_TRAIN, load_dataset


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
    data = load_dataset("cifar10", root=tmp_path)
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
        load_dataset("cifar10", root=tmp_path)
    write_fake_cifar(tmp_path / CIFAR10_DIR)
    (tmp_path / CIFAR10_DIR / CIFAR10_TEST).write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="garbled: 100 bytes is not a whole number of 3,073-byte records"):
        load_dataset("cifar10", root=tmp_path)
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'; choose from digits, cifar10"):
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
        load_dataset("cifar10", root=tmp_path / "data", download=True)
    monkeypatch.setattr(datasets, "CIFAR10_MD5", hashlib.md5(buffer.getvalue()).hexdigest())
    data = load_dataset("cifar10", root=tmp_path / "data", download=True)
    assert len(data.test.y) == 6 and (tmp_path / "data" / CIFAR10_DIR / CIFAR10_TEST).is_file()
