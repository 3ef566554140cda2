"""HW3 Question 1, report part: train a VAE on binarised MNIST and estimate log p(x).

Provided code. The negative ELBO and the importance-sampling estimate call the
functions you write in ``q1_solution.py`` (keep that file next to this one), so
this script is also a check that they behave in a real model.

Usage::

    python q1_vae.py --data-dir data/binarized_mnist            # full run (20 epochs)
    python q1_vae.py --smoke                                    # seconds on CPU, synthetic data

``vae.ipynb`` runs the same steps cell by cell (on Colab too). Figures go to ``--out``
(default ``vae_out/``); a smoke run's start with ``smoke_``.

The data are the binarised MNIST ``.amat`` text files of Larochelle & Murray
(``binarized_mnist_{train,valid,test}.amat``: one image per line, 784
space-separated 0/1 values).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from kit_data import DOWNLOAD_OFF, DataUnavailable, download_failed, main_or_exit
from kit_data import fetch as fetch_url
from kit_smoke import smoke_name, smoke_title
from torch.utils.data import DataLoader, TensorDataset

IMAGE_SIDE = 28
IMAGE_DIM = IMAGE_SIDE * IMAGE_SIDE
SPLITS = ("train", "valid", "test")
AMAT_NAME = "binarized_mnist_{split}.amat"
AMAT_SOURCE = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
AMAT_URLS = (
    AMAT_SOURCE + "binarized_mnist_{split}.amat",
    AMAT_SOURCE.replace("http:", "https:") + "binarized_mnist_{split}.amat",
)
DATA_DIR_HINT = "or pass --data-dir FOLDER"
PROB_EPS = 1e-6  # keeps decoder means strictly inside (0, 1) so log(mu) and log(1 - mu) stay finite


@dataclasses.dataclass
class VAEConfig:
    """Hyperparameters of the assignment; change them only for experiments you report."""

    latent_dim: int = 100
    lr: float = 3e-4
    epochs: int = 20
    batch_size: int = 64
    is_samples: int = 200  # K of the importance-sampling estimate
    is_chunk: int = 50  # samples decoded at once, bounds memory during the estimate
    seed: int = 0
    max_steps_per_epoch: int | None = None  # None: full epochs; a small int for smoke runs


# --------------------------------------------------------------------------- data


def amat_path(data_dir: str | os.PathLike, split: str) -> Path:
    """Where the ``.amat`` file of ``split`` is expected, so loader and downloader agree."""
    return Path(data_dir) / AMAT_NAME.format(split=split)


def download(
    data_dir: str | os.PathLike,
    splits: Sequence[str] = SPLITS,
    urls: Sequence[str] = AMAT_URLS,
    timeout: float = 60.0,
    hint: str = DATA_DIR_HINT,
) -> dict[str, Path]:
    """Fetch the missing ``.amat`` files into ``data_dir``; files already there are kept.

    Raises ``DataUnavailable`` (a ``FileNotFoundError``) naming the files and the folder
    when no URL works (for instance offline, or on a cluster node without internet), so
    that you know where to copy them by hand; ``hint`` says how to point at another folder.
    """
    data_dir = Path(data_dir)
    paths: dict[str, Path] = {}
    failed: list[str] = []
    error = ""
    for split in splits:
        target = amat_path(data_dir, split)
        paths[split] = target
        if target.exists():
            continue
        if failed:  # the network already failed once: list the file without waiting on it again
            failed.append(target.name)
            continue
        problem = fetch_url([url.format(split=split) for url in urls], target, timeout)
        if problem is not None:
            failed.append(target.name)
            error = problem
    if failed:
        raise DataUnavailable("binarised MNIST", failed, data_dir, AMAT_SOURCE, download_failed(error), hint)
    return paths


def load_amat(path: str | os.PathLike) -> torch.Tensor:
    """Read one ``.amat`` file into a ``(N, 784)`` float32 tensor of 0s and 1s.

    Checks the format, so that a truncated download fails here with a clear message
    instead of as a shape error deep in training.
    """
    array = np.loadtxt(path, dtype=np.float32, ndmin=2)
    if array.shape[1] != IMAGE_DIM:
        raise ValueError(f"{path}: expected {IMAGE_DIM} values per line, got {array.shape[1]}")
    if not np.isin(array, (0.0, 1.0)).all():
        raise ValueError(f"{path}: values must be 0 or 1 (binarised MNIST)")
    return torch.from_numpy(array)


def load_binarized_mnist(data_dir: str | os.PathLike, fetch: bool = True,
                         hint: str = DATA_DIR_HINT) -> dict[str, torch.Tensor]:
    """Load the three splits, downloading the missing files first when ``fetch`` is true.

    Missing files that cannot be fetched raise ``DataUnavailable``, which says which file
    to put where (``hint``: how to point at another folder).
    """
    if fetch:
        download(data_dir, hint=hint)
    missing = [amat_path(data_dir, s).name for s in SPLITS if not amat_path(data_dir, s).exists()]
    if missing:
        raise DataUnavailable("binarised MNIST", missing, data_dir, AMAT_SOURCE, DOWNLOAD_OFF, hint)
    return {split: load_amat(amat_path(data_dir, split)) for split in SPLITS}


def synthetic_binary_data(n: int, seed: int = 0, p: float = 0.3) -> torch.Tensor:
    """Random binary ``(n, 784)`` images: enough to exercise the code without the dataset."""
    gen = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full((n, IMAGE_DIM), p), generator=gen)


def synthetic_splits() -> dict[str, torch.Tensor]:
    """The three splits of a smoke run (``--smoke``, ``SMOKE = True`` in vae.ipynb): tiny and random."""
    return {"train": synthetic_binary_data(64, 1), "valid": synthetic_binary_data(16, 2),
            "test": synthetic_binary_data(8, 3)}


def make_loader(data: torch.Tensor, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    """Batches of flat binary images; a seeded generator makes the shuffling reproducible."""
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(data), batch_size=batch_size, shuffle=shuffle, generator=gen)


# --------------------------------------------------------------------------- model


class VAE(nn.Module):
    """Convolutional VAE of the assignment: q(z|x) = N(mu, diag(exp(logvar))), p(x|z) Bernoulli.

    Encoder: conv 3x3 (32) - ELU - avgpool 2 - conv 3x3 (64) - ELU - avgpool 2 -
    conv 5x5 (256) - ELU - linear to ``2 * latent_dim`` (mu and logvar).
    Decoder: linear to 256 - ELU - conv 5x5 (64, pad 4) - ELU - upsample x2 -
    conv 3x3 (32, pad 2) - ELU - upsample x2 - conv 3x3 (16, pad 2) - ELU -
    conv 3x3 (1, pad 2) - sigmoid, giving ``(B, 784)`` Bernoulli means.
    """

    def __init__(self, latent_dim: int = 100) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ELU(), nn.AvgPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ELU(), nn.AvgPool2d(2),
            nn.Conv2d(64, 256, 5), nn.ELU(), nn.Flatten(),
            nn.Linear(256, 2 * latent_dim),
        )
        self.decoder_fc = nn.Sequential(nn.Linear(latent_dim, 256), nn.ELU())
        self.decoder_conv = nn.Sequential(
            nn.Conv2d(256, 64, 5, padding=4), nn.ELU(),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(64, 32, 3, padding=2), nn.ELU(),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(32, 16, 3, padding=2), nn.ELU(),
            nn.Conv2d(16, 1, 3, padding=2),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 784)`` binary images to the ``(B, L)`` mean and log-variance of q(z|x)."""
        h = self.encoder(x.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE))
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, L)`` latents to ``(B, 784)`` Bernoulli means, clamped into (0, 1)."""
        h = self.decoder_fc(z).reshape(-1, 256, 1, 1)
        logits = self.decoder_conv(h).reshape(z.shape[0], IMAGE_DIM)
        return torch.sigmoid(logits).clamp(PROB_EPS, 1.0 - PROB_EPS)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """Draw ``z ~ q`` as ``mu + sigma * eps`` so that gradients reach mu and logvar."""
        return mu + (0.5 * logvar).exp() * torch.randn_like(mu)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One stochastic pass: the decoder means and the parameters of q(z|x)."""
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


# --------------------------------------------------------------------------- objectives


def negative_elbo(model: VAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-example ``-ELBO = -(log p(x|z) - KL(q(z|x) || N(0, I)))`` with one sample of z.

    Returns ``(neg_elbo, log_px_given_z, kl)``, each ``(B,)``, so that the parts can be
    logged. Uses your ``log_likelihood_bernoulli`` and ``kl_gaussian_gaussian_analytic``.
    """
    from q1_solution import kl_gaussian_gaussian_analytic, log_likelihood_bernoulli

    x = x.reshape(x.shape[0], IMAGE_DIM)
    x_mu, mu, logvar = model(x)
    zeros = torch.zeros_like(mu)
    log_px_z = log_likelihood_bernoulli(x_mu, x)
    kl = kl_gaussian_gaussian_analytic(mu, logvar, zeros, zeros)
    return -(log_px_z - kl), log_px_z, kl


@torch.no_grad()
def importance_sampling_log_px(model: VAE, x: torch.Tensor, num_samples: int = 200, chunk: int = 50) -> torch.Tensor:
    """``(B,)`` estimate of ``log p(x)`` with ``num_samples`` importance samples from q(z|x).

    ``log p(x) ~= log_mean_exp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)]``; the samples
    are decoded ``chunk`` at a time to bound memory. Uses your ``log_mean_exp``,
    ``log_likelihood_bernoulli`` and ``log_likelihood_normal``.
    """
    from q1_solution import (
        log_likelihood_bernoulli,
        log_likelihood_normal,
        log_mean_exp,
    )

    x = x.reshape(x.shape[0], IMAGE_DIM)
    mu, logvar = model.encode(x)
    log_w = [_log_weights(model, x, mu, logvar, min(chunk, num_samples - start),
                          log_likelihood_bernoulli, log_likelihood_normal)
             for start in range(0, num_samples, chunk)]
    return log_mean_exp(torch.cat(log_w, dim=1))


def _log_weights(
    model: VAE,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    k: int,
    log_likelihood_bernoulli: Callable[..., torch.Tensor],
    log_likelihood_normal: Callable[..., torch.Tensor],
) -> torch.Tensor:
    """``(B, k)`` log importance weights ``log p(x|z) + log p(z) - log q(z|x)`` for k draws."""
    batch, latent = mu.shape

    def repeat(t: torch.Tensor) -> torch.Tensor:
        return t.unsqueeze(1).expand(batch, k, t.shape[1]).reshape(batch * k, t.shape[1])

    mu_r, logvar_r = repeat(mu), repeat(logvar)
    z = VAE.reparameterize(mu_r, logvar_r)
    zeros = torch.zeros_like(z)
    log_px_z = log_likelihood_bernoulli(model.decode(z), repeat(x))
    log_pz = log_likelihood_normal(zeros, zeros, z)
    log_qz = log_likelihood_normal(mu_r, logvar_r, z)
    return (log_px_z + log_pz - log_qz).reshape(batch, k)


# --------------------------------------------------------------------------- loops


def train_epoch(model: VAE, loader: DataLoader, optimizer: torch.optim.Optimizer,
                device: torch.device, max_steps: int | None = None) -> float:
    """One pass of Adam on the mean negative ELBO; returns the mean training loss."""
    model.train()
    total, count = 0.0, 0
    for step, (x,) in enumerate(loader):
        if max_steps is not None and step >= max_steps:
            break
        x = x.to(device)
        loss = negative_elbo(model, x)[0].mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item() * x.shape[0]
        count += x.shape[0]
    return total / max(count, 1)


@torch.no_grad()
def evaluate_elbo(model: VAE, loader: DataLoader, device: torch.device) -> float:
    """Mean ELBO per example (the number the assignment asks to get above -102)."""
    model.eval()
    total, count = 0.0, 0
    for (x,) in loader:
        x = x.to(device)
        total += -negative_elbo(model, x)[0].sum().item()
        count += x.shape[0]
    return total / max(count, 1)


@torch.no_grad()
def evaluate_log_px(model: VAE, loader: DataLoader, device: torch.device,
                    num_samples: int = 200, chunk: int = 50) -> float:
    """Mean importance-sampled log p(x) per example over a whole split."""
    model.eval()
    total, count = 0.0, 0
    for (x,) in loader:
        x = x.to(device)
        total += importance_sampling_log_px(model, x, num_samples, chunk).sum().item()
        count += x.shape[0]
    return total / max(count, 1)


def train(model: VAE, train_loader: DataLoader, valid_loader: DataLoader, cfg: VAEConfig,
          device: torch.device, log: Callable[[str], None] = print) -> list[dict[str, float]]:
    """Train for ``cfg.epochs`` epochs, reporting the validation ELBO after each one."""
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    history: list[dict[str, float]] = []
    for epoch in range(1, cfg.epochs + 1):
        start = time.time()
        train_loss = train_epoch(model, train_loader, optimizer, device, cfg.max_steps_per_epoch)
        valid_elbo = evaluate_elbo(model, valid_loader, device)
        history.append({"epoch": epoch, "train_neg_elbo": train_loss, "valid_elbo": valid_elbo})
        log(f"epoch {epoch:3d}  train -ELBO {train_loss:9.3f}  valid ELBO {valid_elbo:9.3f}"
            f"  ({time.time() - start:.1f}s)")
    return history


# --------------------------------------------------------------------------- figures

ELBO_TARGET = -102.0  # the validation ELBO the report asks for


def save_figures(model: VAE, history: Sequence[dict[str, float]], out_dir: str | os.PathLike,
                 smoke: bool = False, seed: int = 0, n_samples: int = 64) -> list[Path]:
    """Write the report's figures: the ELBO per epoch (with the -102 target) and samples.

    Samples are the decoder's Bernoulli means for ``z ~ N(0, I)``, drawn from their own
    seeded generator so that two runs' figures are comparable. A smoke run's files start
    with ``smoke_`` and their titles say so.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []

    fig = Figure(figsize=(6, 4), constrained_layout=True)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    epochs = [h["epoch"] for h in history]
    marker = "o" if len(epochs) < 30 else None
    ax.plot(epochs, [-h["train_neg_elbo"] for h in history], marker=marker, label="train ELBO")
    ax.plot(epochs, [h["valid_elbo"] for h in history], marker=marker, label="validation ELBO")
    ax.axhline(ELBO_TARGET, color="grey", linestyle="--", label=f"target {ELBO_TARGET:g}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("ELBO per example")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(smoke_title("VAE on binarised MNIST: ELBO per epoch", smoke), fontsize=9)
    paths.append(out / smoke_name("elbo_curve.png", smoke))
    fig.savefig(paths[-1], dpi=100)

    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n_samples, model.latent_dim, generator=gen).to(device)
    model.eval()
    with torch.no_grad():
        images = model.decode(z).cpu().reshape(n_samples, IMAGE_SIDE, IMAGE_SIDE).numpy()
    side = int(np.ceil(np.sqrt(n_samples)))
    tiles = np.ones((side * side, IMAGE_SIDE, IMAGE_SIDE), dtype=images.dtype)
    tiles[:n_samples] = images
    grid = tiles.reshape(side, side, IMAGE_SIDE, IMAGE_SIDE).transpose(0, 2, 1, 3)
    fig = Figure(figsize=(5, 5.4), constrained_layout=True)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(grid.reshape(side * IMAGE_SIDE, side * IMAGE_SIDE), cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    ax.set_title(smoke_title("VAE samples: decoder means for z ~ N(0, I)", smoke), fontsize=9)
    paths.append(out / smoke_name("samples.png", smoke))
    fig.savefig(paths[-1], dpi=100)
    return paths


# --------------------------------------------------------------------------- CLI


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; defaults are the assignment's hyperparameters."""
    cfg = VAEConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default="data/binarized_mnist", help="folder of the .amat files")
    parser.add_argument("--epochs", type=int, default=cfg.epochs)
    parser.add_argument("--batch-size", type=int, default=cfg.batch_size)
    parser.add_argument("--lr", type=float, default=cfg.lr)
    parser.add_argument("--is-samples", type=int, default=cfg.is_samples, help="K of the log p(x) estimate")
    parser.add_argument("--seed", type=int, default=cfg.seed)
    parser.add_argument("--out", default="vae_out", help="folder for the figures")
    parser.add_argument("--save", default=None, help="write the trained weights to this file")
    parser.add_argument("--no-download", action="store_true", help="never try the network")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny synthetic data, 2 steps, small K: checks the code in seconds")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> VAEConfig:
    """The run's hyperparameters; ``--smoke`` shrinks everything but the architecture."""
    cfg = VAEConfig(lr=args.lr, epochs=args.epochs, batch_size=args.batch_size,
                    is_samples=args.is_samples, seed=args.seed)
    return smoke_config(cfg) if args.smoke else cfg


def smoke_config(cfg: VAEConfig) -> VAEConfig:
    """``cfg`` shrunk to seconds on CPU (one short epoch, K = 8); the architecture is kept."""
    return dataclasses.replace(cfg, epochs=1, batch_size=16, is_samples=8, is_chunk=4, max_steps_per_epoch=2)


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Train, report validation ELBO per epoch, then the test ELBO and IS log-likelihood,
    and draw the figures."""
    args = parse_args(argv)
    cfg = config_from_args(args)
    torch.manual_seed(cfg.seed)
    device = torch.device(args.device)
    if args.smoke:
        data = synthetic_splits()
    else:
        data = load_binarized_mnist(args.data_dir, fetch=not args.no_download)
    model = VAE(cfg.latent_dim).to(device)
    history = train(model, make_loader(data["train"], cfg.batch_size, True, cfg.seed),
                    make_loader(data["valid"], cfg.batch_size, False), cfg, device)
    if args.save:
        torch.save(model.state_dict(), args.save)
    results: dict[str, float] = {}
    for split in ("valid", "test"):
        loader = make_loader(data[split], cfg.batch_size, False)
        results[f"{split}_elbo"] = evaluate_elbo(model, loader, device)
        results[f"{split}_log_px"] = evaluate_log_px(model, loader, device, cfg.is_samples, cfg.is_chunk)
        print(f"{split}: ELBO {results[f'{split}_elbo']:.3f}  "
              f"log p(x) ~= {results[f'{split}_log_px']:.3f} (K={cfg.is_samples})")
    paths = save_figures(model, history, args.out, smoke=args.smoke, seed=cfg.seed)
    print("figures: " + ", ".join(str(p) for p in paths))
    return results


if __name__ == "__main__":
    sys.exit(main_or_exit(main))
