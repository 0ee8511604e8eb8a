"""Datasets for evaluators that train child networks: fixed train / valid / test splits.

Search reads the validation split only; the test split is for reports. The default,
scikit-learn's bundled 8x8 digits, needs no download and trains in seconds on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def _split(x: np.ndarray, y: np.ndarray, fractions: tuple[float, float],
           seed: int) -> tuple[Split, Split, Split]:
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


DATASETS = {"digits": load_digits}


def load_dataset(name: str) -> Dataset:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    return DATASETS[name]()
