"""Tests of student_template/q1_vae.py (VAE report code) on the reference solutions, on CPU."""
from __future__ import annotations

import io
import math
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch


def write_amat(path: Path, rows: np.ndarray) -> None:
    """Write rows of 0/1 in the official format: one image per line, space-separated integers."""
    path.write_text("".join(" ".join(str(int(v)) for v in row) + "\n" for row in rows))


def random_binary(n: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, 784)) < 0.3).astype(np.int64)


def test_load_amat_reads_the_official_format(ref, tmp_path):
    rows = random_binary(3)
    write_amat(tmp_path / "x.amat", rows)
    data = ref.q1_vae.load_amat(tmp_path / "x.amat")
    assert data.shape == (3, 784) and data.dtype == torch.float32
    assert torch.equal(data, torch.from_numpy(rows).float())


def test_load_amat_single_line_is_still_2d(ref, tmp_path):
    write_amat(tmp_path / "x.amat", random_binary(1))
    assert ref.q1_vae.load_amat(tmp_path / "x.amat").shape == (1, 784)


def test_load_amat_rejects_a_wrong_width_or_non_binary_values(ref, tmp_path):
    write_amat(tmp_path / "short.amat", random_binary(2)[:, :783])
    with pytest.raises(ValueError, match="784"):
        ref.q1_vae.load_amat(tmp_path / "short.amat")
    rows = random_binary(2)
    rows[0, 0] = 2
    write_amat(tmp_path / "bad.amat", rows)
    with pytest.raises(ValueError, match="0 or 1"):
        ref.q1_vae.load_amat(tmp_path / "bad.amat")


def test_load_binarized_mnist_uses_files_already_present(ref, tmp_path):
    for i, split in enumerate(("train", "valid", "test")):
        write_amat(tmp_path / f"binarized_mnist_{split}.amat", random_binary(2 + i, seed=i))
    data = ref.q1_vae.load_binarized_mnist(tmp_path)  # the network is disabled: must not be needed
    assert {k: tuple(v.shape) for k, v in data.items()} == {
        "train": (2, 784), "valid": (3, 784), "test": (4, 784)}


def test_download_offline_fails_with_a_clear_message(ref, tmp_path):
    target = tmp_path / "mnist"
    with pytest.raises(ref.kit_data.DataUnavailable) as info:
        ref.q1_vae.download(target)
    message = str(info.value)
    assert "no network" in message.lower()
    for split in ("train", "valid", "test"):
        assert f"binarized_mnist_{split}.amat" in message
    assert str(target.resolve()) in message and "--data-dir" in message
    assert not target.exists() or not list(target.iterdir()), "no partial file may be left behind"


def test_download_writes_the_files_when_a_url_answers(ref, tmp_path, monkeypatch):
    seen = []

    def fake_urlopen(url, timeout=None):
        seen.append(url)
        return io.BytesIO(b"0 1\n")

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    paths = ref.q1_vae.download(tmp_path, splits=("valid",))
    assert paths["valid"].read_bytes() == b"0 1\n"
    assert seen and seen[0].endswith("binarized_mnist_valid.amat")


def test_vae_shapes(ref):
    model = ref.q1_vae.VAE(latent_dim=100)
    x = torch.bernoulli(torch.full((5, 784), 0.5))
    mu, logvar = model.encode(x)
    assert mu.shape == (5, 100) and logvar.shape == (5, 100)
    means = model.decode(mu)
    assert means.shape == (5, 784)
    assert bool(((means > 0) & (means < 1)).all())
    out, mu2, logvar2 = model(x)
    assert out.shape == (5, 784) and mu2.shape == (5, 100)


def test_hyperparameters_are_the_assignment_ones(ref):
    cfg = ref.q1_vae.VAEConfig()
    assert (cfg.latent_dim, cfg.lr, cfg.epochs, cfg.batch_size, cfg.is_samples) == (100, 3e-4, 20, 64, 200)


def test_negative_elbo_is_reconstruction_minus_kl_and_trains(ref):
    torch.manual_seed(0)
    model = ref.q1_vae.VAE()
    x = torch.bernoulli(torch.full((4, 784), 0.3))
    neg, rec, kl = ref.q1_vae.negative_elbo(model, x)
    assert neg.shape == rec.shape == kl.shape == (4,)
    torch.testing.assert_close(neg, -(rec - kl))
    assert bool((kl >= 0).all()) and bool(torch.isfinite(neg).all())
    neg.mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_importance_sampling_uses_log_mean_exp_over_k_samples(ref, monkeypatch):
    calls = []
    original = ref.q1_solution.log_mean_exp

    def spy(y):
        calls.append(tuple(y.shape))
        return original(y)

    monkeypatch.setattr(ref.q1_solution, "log_mean_exp", spy)
    torch.manual_seed(0)
    model = ref.q1_vae.VAE().eval()
    x = torch.bernoulli(torch.full((3, 784), 0.3))
    log_px = ref.q1_vae.importance_sampling_log_px(model, x, num_samples=7, chunk=3)
    assert calls == [(3, 7)], "one log_mean_exp over all K samples, chunks concatenated"
    assert log_px.shape == (3,) and bool(torch.isfinite(log_px).all())


def test_importance_sampling_is_close_to_and_above_the_elbo(ref):
    # log p(x) >= ELBO; with a barely trained model the two are close.
    torch.manual_seed(0)
    model = ref.q1_vae.VAE().eval()
    x = torch.bernoulli(torch.full((8, 784), 0.3))
    with torch.no_grad():
        elbo = -torch.stack([ref.q1_vae.negative_elbo(model, x)[0] for _ in range(20)]).mean(0)
        log_px = ref.q1_vae.importance_sampling_log_px(model, x, num_samples=50, chunk=25)
    assert bool((log_px >= elbo - 0.5).all())
    assert bool(((log_px - elbo).abs() < 0.05 * elbo.abs()).all())


def test_one_training_epoch_of_two_steps_and_validation(ref):
    q1 = ref.q1_vae
    cfg = q1.VAEConfig(epochs=1, batch_size=8, max_steps_per_epoch=2)
    torch.manual_seed(0)
    model = q1.VAE(cfg.latent_dim)
    before = [p.detach().clone() for p in model.parameters()]
    logs = []
    history = q1.train(model, q1.make_loader(q1.synthetic_binary_data(32), 8, True),
                       q1.make_loader(q1.synthetic_binary_data(8, 1), 8, False), cfg,
                       torch.device("cpu"), log=logs.append)
    assert len(history) == 1 and math.isfinite(history[0]["valid_elbo"]) and history[0]["valid_elbo"] < 0
    assert logs and "valid ELBO" in logs[0]
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_cli_smoke_run(ref, capsys, tmp_path, assert_png):
    results = ref.q1_vae.main(["--smoke", "--out", str(tmp_path)])
    assert set(results) == {"valid_elbo", "valid_log_px", "test_elbo", "test_log_px"}
    assert all(math.isfinite(v) for v in results.values())
    out = capsys.readouterr().out
    assert "valid ELBO" in out and "log p(x)" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["smoke_elbo_curve.png", "smoke_samples.png"]
    for path in tmp_path.iterdir():
        assert_png(path)


def test_cli_without_data_and_offline_explains_where_to_put_the_files(ref, tmp_path):
    with pytest.raises(ref.kit_data.DataUnavailable, match="binarized_mnist_train.amat"):
        ref.q1_vae.main(["--data-dir", str(tmp_path), "--epochs", "1"])
