"""Tests of student_template/q2_samplers.py and q3_samplers.py: they download their dataset
when a URL answers (served here from memory), read it without torchvision, and offline
say which file to put where."""
from __future__ import annotations

import io
import pickle
import tarfile
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch

scipy_io = pytest.importorskip("scipy.io")


def serve(monkeypatch: pytest.MonkeyPatch, files: dict[str, bytes]) -> list[str]:
    """``urlopen`` answering with ``files`` by the URL's last part; returns the URLs asked for."""
    asked: list[str] = []

    def fake_urlopen(url, timeout=None):
        asked.append(url)
        name = url.rsplit("/", 1)[-1]
        if name not in files:
            raise urllib.error.URLError(f"{name} not served")
        return io.BytesIO(files[name])

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    return asked


def svhn_mat(n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    scipy_io.savemat(buffer, {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8),
                              "y": rng.integers(1, 11, (n, 1)).astype(np.uint8)})
    return buffer.getvalue()


def test_svhn_sampler_downloads_both_splits_and_holds_out_a_validation_set(ref, tmp_path, monkeypatch):
    asked = serve(monkeypatch, {"train_32x32.mat": svhn_mat(20, 0), "test_32x32.mat": svhn_mat(6, 1)})
    loaders = ref.q2_samplers.svhn_sampler(tmp_path / "svhn", train_batch_size=4, test_batch_size=3, valid_split=0.25)
    assert sorted(u.rsplit("/", 1)[-1] for u in asked) == ["test_32x32.mat", "train_32x32.mat"]
    assert all(u.startswith("http://ufldl.stanford.edu/housenumbers/") for u in asked)
    assert sorted(p.name for p in (tmp_path / "svhn").iterdir()) == ["test_32x32.mat", "train_32x32.mat"]
    x, y = next(iter(loaders.train))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32 and float(x.abs().max()) <= 1.0
    assert y.dtype == torch.int64 and int(y.min()) >= 0 and int(y.max()) <= 9
    assert len(loaders.train.dataset) == 15 and len(loaders.valid.dataset) == 5 and len(loaders.test.dataset) == 6
    # Present files are read, never fetched again.
    asked.clear()
    again = ref.q2_samplers.svhn_sampler(tmp_path / "svhn", 4, 3)
    assert not asked and again.valid is None and len(again.train.dataset) == 20


def test_svhn_offline_names_the_file_and_the_folder(ref, tmp_path):
    with pytest.raises(ref.kit_data.DataUnavailable) as info:
        ref.q2_samplers.load_svhn(tmp_path / "svhn", "train")
    message = str(info.value)
    assert message.startswith("Missing data: SVHN") and "train_32x32.mat" in message
    assert str((tmp_path / "svhn").resolve()) in message and "--data-dir" in message
    assert not (tmp_path / "svhn").exists() or not list((tmp_path / "svhn").iterdir())


def cifar_archive(n: int = 2, extra_member: bool = True) -> tuple[bytes, dict[str, dict]]:
    """A cifar-10-python.tar.gz in the official layout (plus a member that must not be written)."""
    rng = np.random.default_rng(0)
    batches = {}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        for name in names:
            batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": rng.integers(0, 10, n).tolist()}
            batches[name] = batch
            data = pickle.dumps(batch, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if extra_member:
            info = tarfile.TarInfo("../outside.txt")
            info.size = 3
            tar.addfile(info, io.BytesIO(b"bad"))
    return buffer.getvalue(), batches


def test_load_cifar10_downloads_unpacks_and_deletes_the_archive(ref, tmp_path, monkeypatch):
    archive, batches = cifar_archive()
    asked = serve(monkeypatch, {"cifar-10-python.tar.gz": archive})
    data = ref.q3_samplers.load_cifar10(tmp_path / "cifar")
    assert asked == ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"]
    (train_x, train_y), (test_x, test_y) = data["train"], data["test"]
    assert train_x.shape == (10, 3, 32, 32) and train_x.dtype == torch.uint8 and test_x.shape == (2, 3, 32, 32)
    assert train_y[:2].tolist() == batches["data_batch_1"][b"labels"] and test_y.tolist() == batches["test_batch"][b"labels"]
    assert not (tmp_path / "cifar" / "cifar-10-python.tar.gz").exists(), "the downloaded archive is deleted once unpacked"
    assert not (tmp_path / "outside.txt").exists() and not (tmp_path / "cifar" / "outside.txt").exists()
    assert sorted(p.name for p in (tmp_path / "cifar" / "cifar-10-batches-py").iterdir()) == sorted(batches)


def test_load_cifar10_unpacks_an_archive_put_there_by_hand_without_the_network(ref, tmp_path):
    archive, _ = cifar_archive(extra_member=False)
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(archive)
    data = ref.q3_samplers.load_cifar10(tmp_path, download=False)
    assert data["train"][0].shape == (10, 3, 32, 32)
    assert (tmp_path / "cifar-10-python.tar.gz").exists(), "an archive the student put there is kept"


def test_cifar10_offline_names_the_archive_and_the_folder(ref, tmp_path):
    with pytest.raises(ref.kit_data.DataUnavailable) as info:
        ref.q3_samplers.load_cifar10(tmp_path / "cifar")
    message = str(info.value)
    assert message.startswith("Missing data: CIFAR-10") and "cifar-10-python.tar.gz" in message
    assert str((tmp_path / "cifar").resolve()) in message
    assert not (tmp_path / "cifar").exists() or not [p for p in (tmp_path / "cifar").rglob("*") if p.is_file()]
