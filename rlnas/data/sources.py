"""Where a training evaluator's data comes from: the ``dataset`` config group.

``dataset=digits`` (bundled), ``dataset=cifar10`` (its binary distribution),
``dataset=folder dataset.path=DIR`` (an image tree: ``train/CLASS/*.png``, and optionally
``val/`` and ``test/``), ``dataset=npz dataset.path=FILE`` (arrays ``x`` and ``y``, or
``x_train``, ``y_train``, ``x_valid``, ...), ``dataset=python dataset.fn=pkg.module:load``
(your function returns the splits). A split the data does not fix is drawn with
``split_seed``. Everything is checked when the source is made, before any training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from rlnas.core.imports import import_callable
from rlnas.core.registry import DATASETS
from rlnas.core.settings import INT_AT_LEAST_0, MISSING, Component, Range, Text, configured, setting
from rlnas.data.datasets import DATA_ROOT, Dataset, Split, check_cifar10, load_cifar10, load_digits

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
SPLITS = ("train", "valid", "test")


@dataclass
class SourceConfig(Component):
    """A dataset's settings (the ``dataset`` config group)."""

    group: ClassVar[str] = "dataset"
    kind: ClassVar[str] = "dataset"
    split_seed: int = setting(0, "seeds the split of what the data does not split itself", INT_AT_LEAST_0)
    valid_fraction: float = setting(0.2, "the share of the data held out for validation where no split is given",
                                    Range(0, 1, low_open=True, high_open=True))
    test_fraction: float = setting(0.2, "the share held out for testing where no split is given",
                                   Range(0, 1, high_open=True))
    num_classes: int | None = setting(None, "the number of classes; labels must lie in 0..num_classes-1",
                                      Range(1, integer=True, none_means="one more than the largest label"))


class Source:
    """Made from its settings, checked at once; :meth:`load` reads the data."""

    Config: ClassVar[type[SourceConfig]] = SourceConfig
    name: ClassVar[str] = ""

    def __init__(self, config: SourceConfig | None = None, **settings: Any):
        self.config = configured(type(self).Config, config, {"name": self.name, **settings})
        self.check()

    def check(self) -> None:
        """Refuse what cannot load, by name (a missing path), before any work."""

    @property
    def fingerprint(self) -> str:
        """What the data is, for the store: its name, and where it is read from."""
        c = self.config
        where = getattr(c, "path", None) or getattr(c, "fn", None)
        return self.name if where is None else f"{self.name}:{where}:seed{c.split_seed}"

    def load(self) -> Dataset:
        raise NotImplementedError

    def _split(self, x: np.ndarray, y: np.ndarray, given: dict[str, tuple]) -> Dataset:
        """The three splits: those ``given``, the rest drawn from the training data."""
        c = self.config
        order = np.random.default_rng(c.split_seed).permutation(len(x))
        parts = {"train": order}
        for split, fraction in (("test", c.test_fraction), ("valid", c.valid_fraction)):
            if split not in given and fraction > 0:
                n = max(1, round(fraction * len(x)))
                parts[split], parts["train"] = parts["train"][:n], parts["train"][n:]
        arrays = {s: (x[p], y[p]) for s, p in parts.items()} | given
        arrays.setdefault("test", arrays["valid"])
        labels = np.concatenate([a[1] for a in arrays.values()])
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"dataset {self.name}: labels must be integers, got {labels.dtype}")
        num_classes = c.num_classes or int(labels.max()) + 1
        outside = labels[(labels < 0) | (labels >= num_classes)]
        if len(outside):
            raise ValueError(f"dataset {self.name}: label {int(outside[0])} is outside 0..{num_classes - 1} "
                             f"(num_classes={num_classes})")
        splits = {s: Split(torch.as_tensor(np.ascontiguousarray(a[0]), dtype=torch.float32),
                           torch.as_tensor(a[1], dtype=torch.int64)) for s, a in arrays.items()}
        return Dataset(self.name, splits["train"], splits["valid"], splits["test"], num_classes)


@dataclass
class PathConfig(SourceConfig):
    path: str = setting(MISSING, "where the data is", Text("a path"))


class Digits(Source):
    """scikit-learn's 8x8 digits, bundled: 1,797 images split 60 / 20 / 20."""

    def load(self) -> Dataset:
        return load_digits(self.config.split_seed)


@dataclass
class Cifar10Config(SourceConfig):
    root: str | None = setting(None, "the folder holding cifar-10-batches-bin", Text("a path", none_means=DATA_ROOT))
    download: bool = setting(False, "fetch CIFAR-10 (about 160 MB, MD5-checked) if it is missing")


class Cifar10(Source):
    """CIFAR-10's binary distribution, split as NAS-Bench-201's ``cifar10-valid``."""

    Config = Cifar10Config

    def check(self) -> None:
        check_cifar10(self.config.root, self.config.download)

    def load(self) -> Dataset:
        return load_cifar10(self.config.root or DATA_ROOT, self.config.download, self.config.split_seed)


class Folder(Source):
    """Images in class folders: ``train/CLASS/*.png``; ``val/`` and ``test/`` if you have them.

    Every image must have the size of the first; pixels are scaled to [0, 1] and each
    channel standardised with the training images' mean and deviation.
    """

    Config = PathConfig

    def check(self) -> None:
        root = Path(self.config.path).expanduser()
        if not (root / "train").is_dir():
            raise FileNotFoundError(f"dataset folder: {root / 'train'} does not exist; expected "
                                    f"{root}/train/CLASS/IMAGE (and optionally val/ and test/)")

    def load(self) -> Dataset:
        root = Path(self.config.path).expanduser()
        classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
        if not classes:
            raise ValueError(f"dataset folder: {root / 'train'} has no class folders")
        read = {split: self._read(root / folder, classes) for split, folder in
                (("train", "train"), ("valid", "val"), ("test", "test")) if (root / folder).is_dir()}
        x, y = read.pop("train")
        mean, std = x.mean((0, 2, 3), keepdims=True), x.std((0, 2, 3), keepdims=True) + 1e-6
        standard = {split: ((a - mean) / std, b) for split, (a, b) in read.items()}
        if self.config.num_classes is None:
            self.config.num_classes = len(classes)
        return self._split((x - mean) / std, y, standard)

    def _read(self, folder: Path, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
        from PIL import Image

        images, labels, first = [], [], None
        for label, name in enumerate(classes):
            for path in sorted((folder / name).iterdir()) if (folder / name).is_dir() else []:
                if path.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                with Image.open(path) as image:
                    array = np.asarray(image.convert("RGB" if image.mode not in ("L", "1") else "L"), np.float32)
                array = (array[None] if array.ndim == 2 else array.transpose(2, 0, 1)) / 255.0
                first = first or (path, array.shape)
                if array.shape != first[1]:
                    raise ValueError(f"dataset folder: images of mixed sizes: {path} is {array.shape[1:]} "
                                     f"({array.shape[0]} channels), {first[0]} is {first[1][1:]} ({first[1][0]}); "
                                     "resize them to one size")
                images.append(array)
                labels.append(label)
        unknown = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in classes)
        if unknown:
            raise ValueError(f"dataset folder: {folder / unknown[0]} is a class that train/ does not have")
        if not images:
            raise ValueError(f"dataset folder: no images ({', '.join(IMAGE_SUFFIXES)}) under {folder}")
        return np.stack(images), np.array(labels, np.int64)


class Npz(Source):
    """A NumPy ``.npz``: ``x`` and ``y``, or ``x_train``/``y_train`` with ``x_valid``/``y_valid``
    and ``x_test``/``y_test`` where they are fixed. ``x`` is (N, C, H, W) images or (N, F)
    features. Read without unpickling anything."""

    Config = PathConfig

    def check(self) -> None:
        if not Path(self.config.path).expanduser().is_file():
            raise FileNotFoundError(f"dataset npz: {self.config.path} does not exist")

    def load(self) -> Dataset:
        with np.load(Path(self.config.path).expanduser(), allow_pickle=False) as arrays:
            found = {k: arrays[k] for k in arrays.files}
        key = "x" if "x" in found else "x_train"
        if key not in found or "y" + key[1:] not in found:
            raise ValueError(f"dataset npz: {self.config.path} has {', '.join(found)}; it needs x and y, or "
                             "x_train and y_train (with x_valid/y_valid and x_test/y_test if fixed)")
        given = {s: (found[f"x_{s}"], found[f"y_{s}"]) for s in ("valid", "test") if f"x_{s}" in found}
        return self._split(found[key], found["y" + key[1:]], given)


@dataclass
class PythonConfig(SourceConfig):
    fn: str = setting(MISSING, "package.module:function returning the splits: a dict with train (and valid, test), "
                               "each (x, y) or a torch Dataset of (x, y) pairs", Text("an import path"))


class Python(Source):
    """Your function's splits, as tensors, arrays or ``torch.utils.data.Dataset``s (held in memory)."""

    Config = PythonConfig

    def check(self) -> None:
        self.fn = import_callable(self.config.fn, "dataset function")

    def load(self) -> Dataset:
        splits = self.fn()
        if not isinstance(splits, dict) or "train" not in splits or not set(splits) <= set(SPLITS):
            raise ValueError(f"dataset function {self.config.fn} must return a dict with train (and valid, test); "
                             f"got {type(splits).__name__}")
        arrays = {s: _arrays(part, s) for s, part in splits.items() if part is not None}
        x, y = arrays.pop("train")
        return self._split(x, y, arrays)


def _arrays(part: Any, split: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(part, torch.utils.data.Dataset):
        pairs = [part[i] for i in range(len(part))]
        part = (torch.stack([torch.as_tensor(p[0]) for p in pairs]), torch.as_tensor([int(p[1]) for p in pairs]))
    if not (isinstance(part, tuple | list) and len(part) == 2):
        raise ValueError(f"dataset function: split {split} must be (x, y) or a torch Dataset; "
                         f"got {type(part).__name__}")
    return tuple(np.asarray(p.numpy() if isinstance(p, torch.Tensor) else p) for p in part)


def load_source(config: SourceConfig | str | None = None) -> Source:
    """The source ``config`` (or a name, with its defaults) makes, checked; None: digits."""
    config = DATASETS.config(config or "digits") if isinstance(config, str | None) else config
    return DATASETS.get(config.name)(config=config)

