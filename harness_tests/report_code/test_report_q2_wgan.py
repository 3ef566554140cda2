"""Tests of student_template/q2_wgan.py (WGAN-LP report code) on the reference solutions, on CPU."""
from __future__ import annotations

import numpy as np
import pytest
import torch

scipy_io = pytest.importorskip("scipy.io")


def write_svhn_mat(path, n: int = 5, seed: int = 0):
    """A tiny file in SVHN's format: 'X' (32, 32, 3, N) uint8 and 'y' (N, 1) with 10 for the digit 0."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
    images[0, 0, 0, 0], images[0, 0, 1, 0] = 0, 255  # the extremes map to -1 and 1
    labels = np.array([[10], [1], [2], [9], [10]][:n], dtype=np.uint8)
    scipy_io.savemat(str(path), {"X": images, "y": labels})
    return images, labels


def test_load_svhn_mat_layout_scale_and_labels(ref, tmp_path):
    images, _ = write_svhn_mat(tmp_path / "train_32x32.mat")
    dataset = ref.q2_samplers.load_svhn_mat(tmp_path / "train_32x32.mat")
    x, y = dataset.tensors
    assert x.shape == (5, 3, 32, 32) and x.dtype == torch.float32
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    assert float(x[0, 0, 0, 0]) == -1.0 and float(x[0, 1, 0, 0]) == 1.0
    expected = torch.from_numpy(images.transpose(3, 2, 0, 1).astype(np.float32)) / 127.5 - 1.0
    torch.testing.assert_close(x, expected)
    assert y.tolist() == [0, 1, 2, 9, 0]


def test_load_svhn_mat_missing_or_malformed(ref, tmp_path):
    with pytest.raises(FileNotFoundError, match="ufldl.stanford.edu"):
        ref.q2_samplers.load_svhn_mat(tmp_path / "train_32x32.mat")
    scipy_io.savemat(str(tmp_path / "bad.mat"), {"X": np.zeros((28, 28, 1, 2), np.uint8), "y": np.zeros((2, 1))})
    with pytest.raises(ValueError, match=r"\(32, 32, 3, N\)"):
        ref.q2_samplers.load_svhn_mat(tmp_path / "bad.mat")


@pytest.mark.parametrize("width", [8, 64])
def test_generator_and_critic_shapes(ref, width):
    q2 = ref.q2_wgan
    generator, critic = q2.Generator(100, width), q2.Critic(width)
    with torch.no_grad():
        images = generator(torch.randn(3, 100))
    assert images.shape == (3, 3, 32, 32)
    assert float(images.abs().max()) <= 1.0
    assert critic(images).shape == (3, 1)


def test_hyperparameters_are_the_assignment_ones(ref):
    cfg = ref.q2_wgan.WGANConfig()
    assert (cfg.z_dim, cfg.lr, cfg.betas, cfg.n_critic, cfg.lp_coeff, cfg.batch_size) == (
        100, 1e-4, (0.5, 0.9), 5, 10.0, 64)


def test_make_grid_tiles_and_rescales(ref):
    images = torch.full((5, 3, 4, 4), -1.0)
    images[4] = 1.0
    grid = ref.q2_wgan.make_grid(images, nrow=3, padding=2, pad_value=0.5)
    assert grid.shape == (3, 2 * (4 + 2) + 2, 3 * (4 + 2) + 2)
    assert float(grid.min()) == 0.0 and float(grid.max()) == 1.0
    assert float(grid[0, 0, 0]) == 0.5  # padding
    assert bool((grid[:, 8:12, 8:12] == 1.0).all())  # image 4: second row, second column
    assert bool((grid[:, 8:12, 14:18] == 0.5).all())  # no sixth image: padding colour


def test_training_steps_call_the_solution_functions(ref, monkeypatch):
    q2, calls = ref.q2_wgan, {"vf": 0, "lp": 0}
    vf, lp = ref.q2_solution.vf_wasserstein_distance, ref.q2_solution.lp_reg

    def vf_spy(p, q, critic):
        calls["vf"] += 1
        return vf(p, q, critic)

    def lp_spy(x, y, critic):
        calls["lp"] += 1
        return lp(x, y, critic)

    monkeypatch.setattr(ref.q2_solution, "vf_wasserstein_distance", vf_spy)
    monkeypatch.setattr(ref.q2_solution, "lp_reg", lp_spy)
    cfg = q2.WGANConfig(n_iter=2, n_critic=2, batch_size=4, width=8, log_every=1)
    torch.manual_seed(0)
    generator, critic = q2.Generator(cfg.z_dim, cfg.width), q2.Critic(cfg.width)
    g_before = [p.detach().clone() for p in generator.parameters()]
    c_before = [p.detach().clone() for p in critic.parameters()]
    history = q2.train(generator, critic, q2.infinite_batches(q2.synthetic_svhn(8), 4), cfg,
                       torch.device("cpu"), log=lambda s: None)
    assert calls == {"vf": 4, "lp": 4}
    assert len(history) == 2 and all(np.isfinite(list(h.values())).all() for h in history)
    assert any(not torch.equal(b, p) for b, p in zip(g_before, generator.parameters()))
    assert any(not torch.equal(b, p) for b, p in zip(c_before, critic.parameters()))


def test_critic_step_minimises_minus_distance_plus_penalty(ref, monkeypatch):
    # With the penalty forced to 0 and a linear critic, one SGD-like Adam step must raise
    # the estimated distance: the critic maximises vf_wasserstein_distance.
    q2 = ref.q2_wgan
    monkeypatch.setattr(ref.q2_solution, "lp_reg", lambda x, y, critic: torch.zeros(()))
    torch.manual_seed(0)
    cfg = q2.WGANConfig(width=8, lr=1e-2)
    generator, critic = q2.Generator(cfg.z_dim, cfg.width), q2.Critic(cfg.width)
    optimizer = torch.optim.Adam(critic.parameters(), lr=cfg.lr, betas=cfg.betas)
    x = torch.rand(8, 3, 32, 32) * 2 - 1
    distances = [q2.critic_step(x, generator, critic, optimizer, cfg)[0] for _ in range(3)]
    assert distances[-1] > distances[0]


def test_interpolations_match_their_endpoints(ref):
    q2 = ref.q2_wgan
    torch.manual_seed(0)
    generator = q2.Generator(100, 8)
    z0, z1 = torch.randn(100), torch.randn(100)
    latent, data = q2.interpolation_images(generator, z0, z1, [0.0, 0.5, 1.0])
    assert latent.shape == data.shape == (3, 3, 32, 32)
    ends = q2.generate(generator, torch.stack([z0, z1]))
    torch.testing.assert_close(latent[2], ends[0])  # alpha = 1 gives z0
    torch.testing.assert_close(latent[0], ends[1])  # alpha = 0 gives z1
    torch.testing.assert_close(data[2], ends[0])
    torch.testing.assert_close(data[1], 0.5 * (ends[0] + ends[1]))


def test_perturbation_changes_only_the_chosen_dimension(ref):
    q2 = ref.q2_wgan
    torch.manual_seed(0)
    generator = q2.Generator(100, 8)
    z = torch.randn(4, 100)
    images = q2.perturbation_images(generator, z, dim=3, eps=5.0)
    assert images.shape == (8, 3, 32, 32)
    torch.testing.assert_close(images[:4], q2.generate(generator, z))
    shifted = z.clone()
    shifted[:, 3] += 5.0
    torch.testing.assert_close(images[4:], q2.generate(generator, shifted))


def test_cli_smoke_run_writes_figures_and_checkpoint(ref, tmp_path, assert_png, capsys):
    out = tmp_path / "wgan"
    paths = ref.q2_wgan.main(["--smoke", "--out", str(out), "--dims", "0", "7"])
    names = sorted(p.name for p in paths)
    assert names == ["smoke_interpolation.png", "smoke_perturb_dim000.png", "smoke_perturb_dim007.png",
                     "smoke_samples.png"]
    for path in paths:
        assert_png(path)
    assert (out / "smoke_wgan.pt").stat().st_size > 0
    assert "W estimate" in capsys.readouterr().out
    # figures again from the checkpoint, without training and without --smoke: still marked
    again = ref.q2_wgan.main(["--out", str(tmp_path / "again"), "--load", str(out / "smoke_wgan.pt")])
    assert sorted(p.name for p in again) == ["smoke_interpolation.png"] + [
        f"smoke_perturb_dim{d:03d}.png" for d in range(8)] + ["smoke_samples.png"]
    for path in again:
        assert_png(path)
