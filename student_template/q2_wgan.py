"""HW3 Question 2, report part: train a WGAN-LP on SVHN and make the qualitative figures.

Provided code. The critic's loss calls the functions you write in
``q2_solution.py`` (keep that file next to this one):

    critic loss    = -vf_wasserstein_distance(x, G(z), critic) + lambda * lp_reg(x, G(z), critic)
    generator loss = -mean critic(G(z))

Usage::

    python q2_wgan.py --data-dir data/svhn --out wgan_out       # full run
    python q2_wgan.py --load wgan_out/wgan.pt --out wgan_out    # figures only, from a checkpoint
    python q2_wgan.py --smoke --out wgan_smoke                  # seconds on CPU, synthetic data

The data is SVHN's ``train_32x32.mat`` (http://ufldl.stanford.edu/housenumbers/), which
``q2_samplers.py`` downloads into ``--data-dir`` the first time (offline: it says which
file to put where). Figures are PNG files written with matplotlib's Agg backend (no
display needed); a smoke run's files start with ``smoke_`` and their titles say so.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
import torch.nn as nn
from kit_data import main_or_exit
from kit_smoke import smoke_name, smoke_title
from q2_samplers import infinite_batches, load_svhn, synthetic_svhn


@dataclasses.dataclass
class WGANConfig:
    """Hyperparameters of the assignment; change them only for experiments you report."""

    z_dim: int = 100
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)
    n_critic: int = 5  # critic updates per generator update
    lp_coeff: float = 10.0  # lambda, the weight of the Lipschitz penalty
    batch_size: int = 64
    n_iter: int = 50000  # generator updates
    width: int = 64  # base number of channels of both networks
    seed: int = 0
    log_every: int = 100


# --------------------------------------------------------------------------- models


class Generator(nn.Module):
    """DCGAN generator: ``(B, z_dim)`` noise to ``(B, 3, 32, 32)`` images in [-1, 1] (tanh)."""

    def __init__(self, z_dim: int = 100, width: int = 64) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(
            nn.ConvTranspose2d(z_dim, 4 * width, 4, 1, 0, bias=False),  # 1 -> 4
            nn.BatchNorm2d(4 * width), nn.ReLU(True),
            nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1, bias=False),  # 4 -> 8
            nn.BatchNorm2d(2 * width), nn.ReLU(True),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False),  # 8 -> 16
            nn.BatchNorm2d(width), nn.ReLU(True),
            nn.ConvTranspose2d(width, 3, 4, 2, 1),  # 16 -> 32
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Map noise to images."""
        return self.net(z.reshape(z.shape[0], self.z_dim, 1, 1))


class Critic(nn.Module):
    """DCGAN critic: ``(B, 3, 32, 32)`` to scores ``(B, 1)``.

    No batch normalisation: the Lipschitz penalty is taken per sample, and batch norm
    would make each score depend on the rest of the batch.
    """

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2, True),  # 32 -> 16
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2, True),  # 16 -> 8
            nn.Conv2d(2 * width, 4 * width, 4, 2, 1), nn.LeakyReLU(0.2, True),  # 8 -> 4
            nn.Conv2d(4 * width, 1, 4, 1, 0),  # 4 -> 1
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Score a batch of images."""
        return self.net(x).reshape(x.shape[0], 1)


def sample_noise(n: int, z_dim: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Standard normal latent codes, the generator's prior."""
    return torch.randn(n, z_dim, device=device)


# --------------------------------------------------------------------------- training


def critic_step(x: torch.Tensor, generator: Generator, critic: Critic,
                optimizer: torch.optim.Optimizer, cfg: WGANConfig) -> tuple[float, float]:
    """One critic update on objective (3); returns (Wasserstein estimate, penalty)."""
    from q2_solution import lp_reg, vf_wasserstein_distance

    with torch.no_grad():
        y = generator(sample_noise(x.shape[0], cfg.z_dim, x.device))
    distance = vf_wasserstein_distance(x, y, critic)
    penalty = lp_reg(x, y, critic)
    loss = -distance + cfg.lp_coeff * penalty
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(distance.detach().reshape(-1)[0]), float(penalty.detach().reshape(-1)[0])


def generator_step(generator: Generator, critic: Critic, optimizer: torch.optim.Optimizer,
                   cfg: WGANConfig, device: torch.device) -> float:
    """One generator update: raise the critic's score of generated images."""
    loss = -critic(generator(sample_noise(cfg.batch_size, cfg.z_dim, device))).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def make_optimizers(generator: Generator, critic: Critic,
                    cfg: WGANConfig) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """Adam for both players with the assignment's learning rate and betas."""
    return (torch.optim.Adam(generator.parameters(), lr=cfg.lr, betas=cfg.betas),
            torch.optim.Adam(critic.parameters(), lr=cfg.lr, betas=cfg.betas))


def train(generator: Generator, critic: Critic, batches: Iterator[torch.Tensor], cfg: WGANConfig,
          device: torch.device, log: Callable[[str], None] = print) -> list[dict[str, float]]:
    """Alternate ``n_critic`` critic updates and one generator update, ``n_iter`` times."""
    optim_g, optim_c = make_optimizers(generator, critic, cfg)
    history: list[dict[str, float]] = []
    start = time.time()
    for it in range(1, cfg.n_iter + 1):
        generator.train()
        for _ in range(cfg.n_critic):
            distance, penalty = critic_step(next(batches).to(device), generator, critic, optim_c, cfg)
        g_loss = generator_step(generator, critic, optim_g, cfg, device)
        history.append({"iter": it, "wasserstein": distance, "penalty": penalty, "generator_loss": g_loss})
        if it % cfg.log_every == 0 or it == cfg.n_iter:
            log(f"iter {it:6d}  W estimate {distance:8.4f}  penalty {penalty:8.4f}  "
                f"G loss {g_loss:8.4f}  ({time.time() - start:.0f}s)")
    return history


# --------------------------------------------------------------------------- figures


def make_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2, pad_value: float = 1.0) -> torch.Tensor:
    """Tile ``(N, C, H, W)`` images in [-1, 1] into one ``(C, H', W')`` image in [0, 1].

    ``nrow`` images per row, like torchvision's ``make_grid`` (not available here).
    """
    images = ((images.detach().float().cpu() + 1.0) / 2.0).clamp(0.0, 1.0)
    n, c, h, w = images.shape
    ncol = min(nrow, n)
    nrows = (n + ncol - 1) // ncol
    grid = torch.full((c, nrows * (h + padding) + padding, ncol * (w + padding) + padding), pad_value)
    for i in range(n):
        top = padding + (i // ncol) * (h + padding)
        left = padding + (i % ncol) * (w + padding)
        grid[:, top:top + h, left:left + w] = images[i]
    return grid


def save_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int = 8, title: str | None = None,
              xlabels: Sequence[str] | None = None, ylabels: Sequence[str] | None = None) -> Path:
    """Write a grid of images to a PNG, optionally labelling columns and rows."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    grid = make_grid(images, nrow=nrow).permute(1, 2, 0).numpy()
    fig = Figure(figsize=(max(4.0, grid.shape[1] / 40), max(3.0, grid.shape[0] / 40)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(grid, interpolation="nearest")
    _label_axes(ax, images.shape[-1], grid.shape, nrow, xlabels, ylabels)
    if title:
        ax.set_title(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight", dpi=100)
    return path


def _label_axes(ax, size: int, shape: tuple[int, ...], nrow: int,
                xlabels: Sequence[str] | None, ylabels: Sequence[str] | None) -> None:
    """Put labels at the centre of each column or row of the grid, or hide the axes."""
    step = size + 2
    centres = [2 + step * i + size / 2 for i in range(max(shape[0], shape[1]) // step)]
    ax.set_xticks(centres[:len(xlabels)] if xlabels else [])
    ax.set_yticks(centres[:len(ylabels)] if ylabels else [])
    if xlabels:
        ax.set_xticklabels(xlabels, fontsize=7)
    if ylabels:
        ax.set_yticklabels(ylabels, fontsize=7)
    for spine in ax.spines.values():
        spine.set_visible(False)


@torch.no_grad()
def generate(generator: Generator, z: torch.Tensor) -> torch.Tensor:
    """Images for given latent codes, in eval mode (batch norm uses its running statistics)."""
    was_training = generator.training
    generator.eval()
    images = generator(z)
    generator.train(was_training)
    return images


def perturbation_images(generator: Generator, z: torch.Tensor, dim: int, eps: float) -> torch.Tensor:
    """``(2 * n, 3, 32, 32)``: the images of ``z`` then those of ``z`` with ``z[:, dim] += eps``.

    Shown as two rows, it tells whether latent dimension ``dim`` controls a visible factor.
    """
    shifted = z.clone()
    shifted[:, dim] += eps
    return torch.cat([generate(generator, z), generate(generator, shifted)])


def interpolation_images(generator: Generator, z0: torch.Tensor, z1: torch.Tensor,
                         alphas: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Interpolate between two codes, in latent space and in data space.

    Latent: ``G(alpha * z0 + (1 - alpha) * z1)``. Data: ``alpha * G(z0) + (1 - alpha) * G(z1)``.
    ``z0`` and ``z1`` are ``(z_dim,)``; each result is ``(len(alphas), 3, 32, 32)``.
    """
    a = torch.tensor(list(alphas), dtype=z0.dtype, device=z0.device).reshape(-1, 1)
    latent = generate(generator, a * z0 + (1.0 - a) * z1)
    x0, x1 = generate(generator, torch.stack([z0, z1]))
    a = a.reshape(-1, 1, 1, 1)
    return latent, a * x0 + (1.0 - a) * x1


def save_figures(generator: Generator, out_dir: str | os.PathLike, dims: Sequence[int], eps: float,
                 seed: int = 0, n_samples: int = 64, n_perturb: int = 8, smoke: bool = False) -> list[Path]:
    """Write the report's figures: samples, one perturbation grid per dimension, interpolations.

    ``smoke``: the figures of a smoke run, marked in their file names and titles.
    """
    out = Path(out_dir)
    device = next(generator.parameters()).device
    gen = torch.Generator().manual_seed(seed)  # the same codes every time, so figures are comparable
    z = torch.randn(n_samples, generator.z_dim, generator=gen).to(device)
    paths = [save_grid(generate(generator, z), out / smoke_name("samples.png", smoke), nrow=8,
                       title=smoke_title("WGAN-LP samples", smoke))]
    base = z[:n_perturb]
    for d in dims:
        paths.append(save_grid(perturbation_images(generator, base, d, eps),
                               out / smoke_name(f"perturb_dim{d:03d}.png", smoke),
                               nrow=base.shape[0], title=smoke_title(f"latent dim {d}: +{eps:g}", smoke),
                               ylabels=["z", f"z + {eps:g} e_{d}"]))
    alphas = [i / 10 for i in range(11)]
    latent, data = interpolation_images(generator, z[0], z[1], alphas)
    paths.append(save_grid(torch.cat([latent, data]), out / smoke_name("interpolation.png", smoke),
                           nrow=len(alphas),
                           title=smoke_title("alpha * z0 + (1 - alpha) * z1  vs  alpha * G(z0) + (1 - alpha) * G(z1)",
                                             smoke),
                           xlabels=[f"{a:.1f}" for a in alphas], ylabels=["latent", "data"]))
    return paths


# --------------------------------------------------------------------------- CLI


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; defaults are the assignment's hyperparameters."""
    cfg = WGANConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default="data/svhn", help="folder holding train_32x32.mat")
    parser.add_argument("--out", default="wgan_out", help="folder for figures and the checkpoint")
    parser.add_argument("--n-iter", type=int, default=cfg.n_iter, help="generator updates")
    parser.add_argument("--seed", type=int, default=cfg.seed)
    parser.add_argument("--dims", type=int, nargs="+", default=list(range(8)),
                        help="latent dimensions to perturb")
    parser.add_argument("--eps", type=float, default=5.0, help="size of the latent perturbation")
    parser.add_argument("--load", default=None, help="skip training: load this checkpoint, draw figures")
    parser.add_argument("--no-download", action="store_true", help="never try the network")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--smoke", action="store_true",
                        help="synthetic data, small nets, 2 generator steps: checks the code in seconds")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> list[Path]:
    """Train (or load) the WGAN-LP, save a checkpoint, and write the figures."""
    args = parse_args(argv)
    cfg = WGANConfig(n_iter=args.n_iter, seed=args.seed)
    if args.smoke:
        cfg = dataclasses.replace(cfg, n_iter=2, n_critic=2, batch_size=8, width=8, log_every=1)
    torch.manual_seed(cfg.seed)
    device = torch.device(args.device)
    state = torch.load(args.load, map_location=device, weights_only=True) if args.load else None
    smoke = args.smoke
    if state is not None:  # rebuild the networks with the sizes they were trained with
        cfg = dataclasses.replace(cfg, z_dim=state["config"]["z_dim"], width=state["config"]["width"])
        smoke = smoke or bool(state.get("smoke", False))  # a smoke checkpoint's figures stay marked
    generator = Generator(cfg.z_dim, cfg.width).to(device)
    critic = Critic(cfg.width).to(device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if state is not None:
        generator.load_state_dict(state["generator"])
        critic.load_state_dict(state["critic"])
    else:
        data = synthetic_svhn(32, cfg.seed) if args.smoke else load_svhn(args.data_dir, "train", not args.no_download)
        train(generator, critic, infinite_batches(data, cfg.batch_size, cfg.seed), cfg, device)
        torch.save({"generator": generator.state_dict(), "critic": critic.state_dict(),
                    "config": dataclasses.asdict(cfg), "smoke": smoke}, out / smoke_name("wgan.pt", smoke))
    dims = [d for d in args.dims if 0 <= d < cfg.z_dim]
    paths = save_figures(generator, out, dims[:2] if args.smoke else dims, args.eps, cfg.seed, smoke=smoke)
    print("figures: " + ", ".join(str(p) for p in paths))
    return paths


if __name__ == "__main__":
    sys.exit(main_or_exit(main))
