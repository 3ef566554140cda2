"""HW3 Question 2: samplers of the Street View House Numbers dataset (SVHN).

Provided code, used by ``q2_wgan.py``. ``svhn_sampler`` downloads what it needs
(``train_32x32.mat``, ``test_32x32.mat`` from http://ufldl.stanford.edu/housenumbers/)
into its folder the first time; offline, it stops with a message saying which file to
put where. Images come as float32 ``(B, 3, 32, 32)`` in [-1, 1] (the generator's tanh
range), labels as int64 0..9. No torchvision: the ``.mat`` files are read with scipy.

    loaders = svhn_sampler("data/svhn", train_batch_size=64, test_batch_size=64)
    for x, y in loaders.train:
        ...
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from kit_data import DOWNLOAD_OFF, DataUnavailable, download_failed, fetch
from torch.utils.data import DataLoader, Subset, TensorDataset

SVHN_URL = "http://ufldl.stanford.edu/housenumbers/{name}"
SVHN_SOURCE = "http://ufldl.stanford.edu/housenumbers/"
SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat", "extra": "extra_32x32.mat"}
DATA_DIR_HINT = "or pass --data-dir FOLDER"


@dataclasses.dataclass(frozen=True)
class SVHNLoaders:
    """What ``svhn_sampler`` returns: shuffled training batches, held-out ones, test batches."""

    train: DataLoader
    valid: DataLoader | None  # None unless valid_split > 0
    test: DataLoader


def svhn_path(root: str | os.PathLike, split: str) -> Path:
    """Where the ``.mat`` file of ``split`` is expected, so that loader and downloader agree."""
    if split not in SVHN_FILES:
        raise ValueError(f"split must be one of {sorted(SVHN_FILES)}, got {split!r}")
    return Path(root) / SVHN_FILES[split]


def download_svhn(root: str | os.PathLike, split: str = "train", timeout: float = 60.0,
                  hint: str = DATA_DIR_HINT) -> Path:
    """Fetch ``split``'s ``.mat`` file into ``root`` unless it is there; return its path.

    Raises ``DataUnavailable`` (a ``FileNotFoundError``) naming the file and the folder
    when the download fails, so that you can copy it there by hand.
    """
    target = svhn_path(root, split)
    if not target.exists():
        error = fetch([SVHN_URL.format(name=target.name)], target, timeout)
        if error is not None:
            raise DataUnavailable("SVHN", [target.name], target.parent, SVHN_URL.format(name=target.name),
                                  download_failed(error), hint)
    return target


def load_svhn_mat(path: str | os.PathLike, hint: str = DATA_DIR_HINT) -> TensorDataset:
    """Read an SVHN ``*_32x32.mat`` file into images ``(N, 3, 32, 32)`` in [-1, 1] and labels.

    The file holds ``X`` of shape ``(32, 32, 3, N)`` (uint8) and ``y`` of shape ``(N, 1)``
    where the digit 0 is stored as 10; labels are returned as 0..9. Images are scaled to
    [-1, 1] to match the generator's tanh output.
    """
    path = Path(path)
    if not path.exists():
        raise DataUnavailable("SVHN", [path.name], path.parent, SVHN_URL.format(name=path.name),
                              DOWNLOAD_OFF, hint)
    from scipy.io import loadmat  # imported here: only needed when reading the real data

    mat = loadmat(str(path))
    images = np.asarray(mat["X"])
    if images.ndim != 4 or images.shape[:3] != (32, 32, 3):
        raise ValueError(f"{path}: expected 'X' of shape (32, 32, 3, N), got {images.shape}")
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(3, 2, 0, 1))).float()
    x = x / 127.5 - 1.0
    y = torch.from_numpy(np.asarray(mat["y"]).reshape(-1).astype(np.int64)) % 10
    return TensorDataset(x, y)


def load_svhn(root: str | os.PathLike, split: str = "train", download: bool = True,
              hint: str = DATA_DIR_HINT) -> TensorDataset:
    """One split of SVHN from ``root``, downloaded first when missing and ``download`` is true."""
    path = download_svhn(root, split, hint=hint) if download else svhn_path(root, split)
    return load_svhn_mat(path, hint)


def svhn_sampler(root: str | os.PathLike, train_batch_size: int, test_batch_size: int,
                 valid_split: float = 0.0, download: bool = True, seed: int = 0) -> SVHNLoaders:
    """Loaders over SVHN's training and test sets (downloaded into ``root`` when missing).

    ``valid_split`` holds out that fraction of the training set (a seeded random subset)
    as ``valid``. Training batches are reshuffled every epoch, with a seeded generator.
    """
    if not 0.0 <= valid_split < 1.0:
        raise ValueError(f"valid_split must be in [0, 1), got {valid_split}")
    train = load_svhn(root, "train", download)
    test = load_svhn(root, "test", download)
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(train), generator=gen).tolist()
    n_valid = int(round(valid_split * len(train)))
    fit = Subset(train, order[n_valid:]) if n_valid else train
    valid = DataLoader(Subset(train, order[:n_valid]), batch_size=test_batch_size) if n_valid else None
    return SVHNLoaders(
        train=DataLoader(fit, batch_size=train_batch_size, shuffle=True, generator=gen),
        valid=valid,
        test=DataLoader(test, batch_size=test_batch_size),
    )


def synthetic_svhn(n: int, seed: int = 0) -> TensorDataset:
    """Random images in [-1, 1] and labels: enough to exercise the code without SVHN."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 32, 32, generator=gen) * 2.0 - 1.0
    return TensorDataset(x, torch.randint(0, 10, (n,), generator=gen))


def infinite_batches(dataset: TensorDataset, batch_size: int, seed: int = 0) -> Iterator[torch.Tensor]:
    """Endless stream of image batches (reshuffled each pass): GAN training counts steps, not epochs."""
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True, generator=gen)
    while True:
        for batch in loader:
            yield batch[0]
