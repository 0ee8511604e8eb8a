"""Fixed train / valid / test splits: bundled digits, or CIFAR-10 (downloaded if asked)."""

from __future__ import annotations

import hashlib
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


@dataclass(frozen=True)
class Split:
    x: torch.Tensor  # (N, C, H, W) float32
    y: torch.Tensor  # (N,) int64


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    valid: Split
    test: Split
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])


def _split(x: np.ndarray, y: np.ndarray, fractions: tuple[float, float], seed: int) -> tuple[Split, Split, Split]:
    order = np.random.default_rng(seed).permutation(len(x))
    n_train, n_valid = int(fractions[0] * len(x)), int(fractions[1] * len(x))
    parts = np.split(order, [n_train, n_train + n_valid])
    return tuple(Split(torch.as_tensor(x[p]), torch.as_tensor(y[p])) for p in parts)


def load_digits(split_seed: int = 0) -> Dataset:
    """scikit-learn's 1,797 8x8 handwritten digits, split 60 / 20 / 20 by a fixed seed."""
    from sklearn.datasets import load_digits as sk_load_digits

    data = sk_load_digits()
    x = (data.images.astype(np.float32) / 16.0 - 0.5)[:, None]  # (N, 1, 8, 8) in [-0.5, 0.5]
    train, valid, test = _split(x, data.target.astype(np.int64), (0.6, 0.2), split_seed)
    return Dataset("digits", train, valid, test, num_classes=10)


DATA_ROOT = "~/.cache/rlnas"  # where datasets that live on disk are looked for
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"  # as published on the CIFAR-10 page
CIFAR10_DIR = "cifar-10-batches-bin"
CIFAR10_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST = "test_batch.bin"
_CIFAR10_MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32)[:, None, None]
_CIFAR10_STD = np.array([0.2470, 0.2435, 0.2616], np.float32)[:, None, None]


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One binary batch: a label byte, then 3,072 pixel bytes, per record (nothing unpickled)."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % 3073:
        raise ValueError(f"CIFAR-10 batch {path} is garbled: {raw.size} bytes is not a whole number of "
                         "3,073-byte records (1 label byte + 3x32x32 pixels)")
    records = raw.reshape(-1, 3073)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise ValueError(f"CIFAR-10 batch {path} is garbled: label {labels.max()} is not in 0..9")
    x = records[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
    return (x - _CIFAR10_MEAN) / _CIFAR10_STD, labels


def download_cifar10(root: str | Path) -> Path:
    """Fetch and unpack the CIFAR-10 binary archive into ``root`` after checking its MD5."""
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        archive = Path(tmp) / "cifar-10-binary.tar.gz"
        urllib.request.urlretrieve(CIFAR10_URL, archive)
        digest = hashlib.md5(archive.read_bytes()).hexdigest()
        if digest != CIFAR10_MD5:
            raise ValueError(f"downloaded {CIFAR10_URL} has MD5 {digest}, expected {CIFAR10_MD5}")
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
    return root / CIFAR10_DIR


def load_cifar10(root: str | Path = DATA_ROOT, download: bool = False, split_seed: int = 0) -> Dataset:
    """CIFAR-10 as NAS-Bench-201's ``cifar10-valid``, from ``root``'s ``cifar-10-batches-bin``."""
    folder = Path(root).expanduser() / CIFAR10_DIR
    if _cifar10_missing(folder) and download:
        folder = download_cifar10(root)
    check_cifar10(root)
    batches = [_read_cifar_batch(folder / name) for name in CIFAR10_TRAIN]
    x, y = np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
    train, valid, _ = _split(x, y, (0.5, 0.5), split_seed)  # NAS-Bench-201's halves
    test_x, test_y = _read_cifar_batch(folder / CIFAR10_TEST)
    return Dataset("cifar10", train, valid, Split(torch.as_tensor(test_x), torch.as_tensor(test_y)), num_classes=10)


def _cifar10_missing(folder: Path) -> list[str]:
    return [name for name in (*CIFAR10_TRAIN, CIFAR10_TEST) if not (folder / name).is_file()]


def check_cifar10(root: str | Path | None = None, download: bool = False) -> None:
    """Refuse a CIFAR-10 that is missing and not to be downloaded, before any work."""
    if not download:
        folder = Path(root or DATA_ROOT).expanduser() / CIFAR10_DIR
        missing = _cifar10_missing(folder)
        if missing:
            raise FileNotFoundError(f"CIFAR-10 not found in {folder} (missing {', '.join(missing)}); set "
                                    f"dataset.download=true to fetch it, or dataset.root=<folder holding "
                                    f"{CIFAR10_DIR}>")
