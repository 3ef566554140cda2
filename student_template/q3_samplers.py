"""HW3 Question 3: samplers of CIFAR-10 for SimSiam and its kNN monitor.

Provided code, used by ``q3_simsiam.py``. ``load_cifar10`` downloads
``cifar-10-python.tar.gz`` (https://www.cs.toronto.edu/~kriz/cifar.html) into its
folder the first time and unpacks the python batches; offline, it stops with a message
saying which file to put where. No torchvision: the batches are read with pickle and
numpy. Images come as uint8 ``(N, 3, 32, 32)`` (the augmentations of ``q3_simsiam.py``
run on whole batches), labels as int64 ``(N,)``; ``batches`` draws the index batches.
"""
from __future__ import annotations

import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch
from kit_data import DOWNLOAD_OFF, DataUnavailable, download_failed, fetch

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"  # what the archive unpacks into
SPLIT_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
DATA_DIR_HINT = "or pass --data-dir FOLDER"


def read_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """One pickled CIFAR batch to uint8 images ``(N, 3, 32, 32)`` and int64 labels ``(N,)``.

    Pickle runs code from the file: only load the official CIFAR files.
    """
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"{path}: not a CIFAR-10 batch (no data/labels keys)")
    data = np.asarray(data, dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != data.shape[0]:
        raise ValueError(f"{path}: expected data of shape (N, 3072) and N labels, got {data.shape}")
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    return images, torch.tensor(list(labels), dtype=torch.int64)


def batch_folder(data_dir: str | os.PathLike) -> Path:
    """The folder holding the batch files: ``data_dir``'s ``cifar-10-batches-py`` if any, else itself."""
    root = Path(data_dir)
    return root / FOLDER if (root / FOLDER).is_dir() else root


def missing_batches(data_dir: str | os.PathLike) -> list[str]:
    """The batch files that ``load_cifar10`` would not find under ``data_dir``."""
    folder = batch_folder(data_dir)
    return [n for files in SPLIT_FILES.values() for n in files if not (folder / n).exists()]


def unpack(archive: Path, data_dir: Path) -> Path:
    """Extract the batch files of ``archive`` into ``data_dir / cifar-10-batches-py``; return it.

    Only the expected regular files are written, each under its own name, whatever paths
    the archive holds; an unreadable archive raises ``ValueError`` naming it.
    """
    wanted = {n for files in SPLIT_FILES.values() for n in files} | {"batches.meta"}
    target = data_dir / FOLDER
    target.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                name = Path(member.name).name
                source = tar.extractfile(member) if member.isfile() and name in wanted else None
                if source is not None:
                    partial = target / (name + ".part")
                    partial.write_bytes(source.read())
                    partial.replace(target / name)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ValueError(f"{archive}: not a readable {ARCHIVE} ({exc}); delete it and run again") from exc
    return target


def download_cifar10(data_dir: str | os.PathLike, timeout: float = 60.0, hint: str = DATA_DIR_HINT) -> Path:
    """Download ``cifar-10-python.tar.gz`` into ``data_dir``, unpack it, delete it; return the batch folder.

    Raises ``DataUnavailable`` (a ``FileNotFoundError``) naming the archive and the
    folder when the download fails, so that you can put it there by hand.
    """
    root = Path(data_dir)
    archive = root / ARCHIVE
    error = fetch([CIFAR_URL], archive, timeout)
    if error is not None:
        raise DataUnavailable("CIFAR-10", [ARCHIVE], root, CIFAR_URL, download_failed(error), hint)
    folder = unpack(archive, root)
    archive.unlink()
    return folder


def load_cifar10(data_dir: str | os.PathLike, download: bool = True,
                 hint: str = DATA_DIR_HINT) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Train and test splits from the batch files, in ``data_dir`` or its ``cifar-10-batches-py``.

    When batch files are missing, an archive already in ``data_dir`` is unpacked, else it
    is downloaded when ``download`` is true; otherwise, or when that fails,
    ``DataUnavailable`` says which file to put where.
    """
    root = Path(data_dir)
    if missing_batches(root):
        if (root / ARCHIVE).exists():
            unpack(root / ARCHIVE, root)
        elif download:
            download_cifar10(root, hint=hint)
        else:
            raise DataUnavailable("CIFAR-10", [ARCHIVE], root, CIFAR_URL, DOWNLOAD_OFF, hint)
    missing = missing_batches(root)
    if missing:
        raise ValueError(f"{batch_folder(root)}: the CIFAR-10 batches {', '.join(missing)} are missing; "
                         f"delete {root / ARCHIVE} if it is there and run again")
    folder = batch_folder(root)
    return {split: _concat([read_batch(folder / n) for n in files]) for split, files in SPLIT_FILES.items()}


def _concat(parts: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def synthetic_cifar(n: int, seed: int = 0, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Random uint8 images and labels: enough to exercise the code without CIFAR-10."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), generator=gen, dtype=torch.uint8)
    return images, torch.randint(0, 10, (n,), generator=gen)


def batches(n: int, batch_size: int, shuffle: bool, drop_last: bool,
            gen: torch.Generator | None = None) -> list[torch.Tensor]:
    """Index batches over ``n`` items; training drops the last one (BatchNorm needs > 1 sample)."""
    order = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
    stop = n - n % batch_size if drop_last else n
    return [order[i:i + batch_size] for i in range(0, stop, batch_size)]
