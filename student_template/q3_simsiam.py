"""HW3 Question 3, report part: SimSiam on CIFAR-10, its ablations, and a kNN monitor.

Provided code. The model and its loss come from your ``q3_solution.py`` (keep that
file and ``resnet_cifar.py`` next to this one). Runs for the report::

    python q3_simsiam.py --data-dir data/cifar10 --out simsiam_out                 # baseline
    python q3_simsiam.py --data-dir data/cifar10 --out simsiam_out --no-stop-gradient
    python q3_simsiam.py --data-dir data/cifar10 --out simsiam_out --mlp-mode no_pred_mlp
    python q3_simsiam.py --data-dir data/cifar10 --out simsiam_out --mlp-mode fixed_random_init
    python q3_simsiam.py --plot-runs simsiam_out/*_history.json --out simsiam_out  # one figure for all
    python q3_simsiam.py --smoke --out simsiam_smoke                               # seconds on CPU

The data are CIFAR-10's python batches (``data_batch_1`` .. ``data_batch_5`` and
``test_batch`` from https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz), which
``q3_samplers.py`` downloads and unpacks into ``--data-dir`` the first time (offline: it
says which file to put where). The augmentations run on whole batches with tensor
operations (no torchvision). A smoke run's files start with ``smoke_`` and its figure's
title says so.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from kit_data import main_or_exit
from kit_smoke import is_smoke_name, smoke_name, smoke_title
from q3_samplers import batches, load_cifar10, synthetic_cifar
from resnet_cifar import resnet18
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)
MLP_MODES = {"none": None, "no_pred_mlp": "no_pred_mlp", "fixed_random_init": "fixed_random_init"}


@dataclasses.dataclass
class SimSiamConfig:
    """Hyperparameters (SGD as in the SimSiam paper); change them only for runs you report."""

    epochs: int = 100
    batch_size: int = 512
    base_lr: float = 0.05  # the learning rate is base_lr * batch_size / 256
    momentum: float = 0.9
    weight_decay: float = 1e-4
    dim: int = 2048
    pred_dim: int = 512
    stop_gradient: bool = True
    mlp_mode: str | None = None  # None, 'no_pred_mlp' or 'fixed_random_init'
    fix_pred_lr: bool = False  # keep the predictor's learning rate constant (paper, Sec. 4.4)
    knn_k: int = 200
    knn_t: float = 0.1
    knn_every: int = 1  # epochs between kNN evaluations
    width: int = 64  # ResNet-18 channels of the first stage
    seed: int = 0
    max_steps_per_epoch: int | None = None  # None: full epochs; a small int for smoke runs

    @property
    def init_lr(self) -> float:
        """The linear scaling rule of the paper: lr = base_lr * batch_size / 256."""
        return self.base_lr * self.batch_size / 256


# --------------------------------------------------------------------------- augmentation


def random_resized_crop_flip(x: torch.Tensor, scale: tuple[float, float] = (0.2, 1.0),
                             ratio: tuple[float, float] = (3 / 4, 4 / 3), flip_p: float = 0.5) -> torch.Tensor:
    """Per-image random crop (area fraction in ``scale``, aspect in ``ratio``) resized back, and flip.

    One affine grid per image does crop, resize and horizontal flip in a single bilinear
    ``grid_sample``. Crops that would not fit are clamped to the image instead of resampled.
    """
    n = x.shape[0]
    opts = {"device": x.device, "dtype": x.dtype}
    area = torch.empty(n, **opts).uniform_(*scale)
    log_r = torch.empty(n, **opts).uniform_(math.log(ratio[0]), math.log(ratio[1]))
    w = torch.sqrt(area * log_r.exp()).clamp(max=1.0)
    h = torch.sqrt(area / log_r.exp()).clamp(max=1.0)
    cx = (torch.rand(n, **opts) * 2 - 1) * (1 - w)
    cy = (torch.rand(n, **opts) * 2 - 1) * (1 - h)
    flip = torch.where(torch.rand(n, **opts) < flip_p, -1.0, 1.0).to(x.dtype)
    theta = torch.zeros(n, 2, 3, **opts)
    theta[:, 0, 0], theta[:, 0, 2] = w * flip, cx
    theta[:, 1, 1], theta[:, 1, 2] = h, cy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """``(N, 1, H, W)`` luma with the ITU-R 601 weights (as torchvision)."""
    r, g, b = x.unbind(dim=1)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(1)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` RGB in [0, 1] to HSV in [0, 1], for the hue jitter."""
    r, g, b = x.unbind(dim=1)
    maxc, _ = x.max(dim=1)
    minc, _ = x.min(dim=1)
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    hue = torch.where(maxc == r, (g - b) / safe,
                      torch.where(maxc == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    hue = torch.where(delta > 0, (hue / 6.0) % 1.0, torch.zeros_like(hue))
    sat = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), torch.zeros_like(maxc))
    return torch.stack([hue, sat, maxc], dim=1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Inverse of ``rgb_to_hsv``."""
    h, s, v = x.unbind(dim=1)
    h6 = (h % 1.0) * 6.0
    i = torch.floor(h6)
    f = h6 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.long() % 6
    r = torch.stack([v, q, p, p, t, v], dim=1).gather(1, i.unsqueeze(1))
    g = torch.stack([t, v, v, q, p, p], dim=1).gather(1, i.unsqueeze(1))
    b = torch.stack([p, p, t, v, v, q], dim=1).gather(1, i.unsqueeze(1))
    return torch.cat([r, g, b], dim=1)


def _factors(n: int, strength: float, apply: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-image factors in ``[1 - strength, 1 + strength]``, 1 where the jitter is not applied."""
    f = torch.empty(n, device=like.device, dtype=like.dtype).uniform_(1 - strength, 1 + strength)
    return torch.where(apply, f, torch.ones_like(f)).reshape(n, 1, 1, 1)


def color_jitter(x: torch.Tensor, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4,
                 hue: float = 0.1, p: float = 0.8) -> torch.Tensor:
    """torchvision-like ``RandomApply(ColorJitter(0.4, 0.4, 0.4, 0.1), p=0.8)`` on a batch.

    Applies brightness, contrast, saturation then hue (a fixed order, where torchvision
    shuffles it), each with its own random factor per image.
    """
    n = x.shape[0]
    apply = torch.rand(n, device=x.device) < p
    x = (x * _factors(n, brightness, apply, x)).clamp(0, 1)
    mean = grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
    x = (mean + (x - mean) * _factors(n, contrast, apply, x)).clamp(0, 1)
    gray = grayscale(x)
    x = (gray + (x - gray) * _factors(n, saturation, apply, x)).clamp(0, 1)
    shift = torch.empty(n, device=x.device, dtype=x.dtype).uniform_(-hue, hue)
    shift = torch.where(apply, shift, torch.zeros_like(shift)).reshape(n, 1, 1)
    hsv = rgb_to_hsv(x)
    hsv = torch.stack([hsv[:, 0] + shift, hsv[:, 1], hsv[:, 2]], dim=1)
    return hsv_to_rgb(hsv).clamp(0, 1)


def random_grayscale(x: torch.Tensor, p: float = 0.2) -> torch.Tensor:
    """Turn each image to grayscale (kept as 3 channels) with probability ``p``."""
    mask = (torch.rand(x.shape[0], device=x.device) < p).reshape(-1, 1, 1, 1)
    return torch.where(mask, grayscale(x).expand_as(x), x)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """Standardise with the CIFAR-10 channel statistics."""
    mean = torch.tensor(CIFAR_MEAN, device=x.device, dtype=x.dtype).reshape(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD, device=x.device, dtype=x.dtype).reshape(1, 3, 1, 1)
    return (x - mean) / std


def to_float(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 ``(N, 3, H, W)`` to float in [0, 1] on ``device``."""
    return images.to(device).float().div_(255.0)


def augment(x: torch.Tensor) -> torch.Tensor:
    """The SimSiam CIFAR augmentation: crop+flip, color jitter, grayscale, normalise."""
    return normalize(random_grayscale(color_jitter(random_resized_crop_flip(x))))


def two_views(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent augmentations of the same ``(N, 3, H, W)`` batch in [0, 1]."""
    return augment(x), augment(x)


# --------------------------------------------------------------------------- model and training


def build_model(cfg: SimSiamConfig) -> nn.Module:
    """``SimSiam`` (from your q3_solution.py) around a CIFAR ResNet-18."""
    from q3_solution import SimSiam

    encoder = functools.partial(resnet18, width=cfg.width)
    return SimSiam(encoder, dim=cfg.dim, pred_dim=cfg.pred_dim, stop_gradient=cfg.stop_gradient,
                   MLP_mode=cfg.mlp_mode)


def make_optimizer(model: nn.Module, cfg: SimSiamConfig) -> torch.optim.Optimizer:
    """SGD over the trainable parameters; the predictor's group may keep a fixed learning rate."""
    groups = [{"params": [p for p in model.encoder.parameters() if p.requires_grad], "fix_lr": False}]
    predictor = [p for p in model.predictor.parameters() if p.requires_grad]
    if predictor:
        groups.append({"params": predictor, "fix_lr": cfg.fix_pred_lr})
    return torch.optim.SGD(groups, lr=cfg.init_lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def adjust_learning_rate(optimizer: torch.optim.Optimizer, cfg: SimSiamConfig, epoch: int) -> float:
    """Cosine decay per epoch, ``lr = init_lr * 0.5 * (1 + cos(pi * epoch / epochs))``."""
    lr = cfg.init_lr * 0.5 * (1.0 + math.cos(math.pi * epoch / cfg.epochs))
    for group in optimizer.param_groups:
        group["lr"] = cfg.init_lr if group.get("fix_lr") else lr
    return lr


def output_std(z: torch.Tensor) -> float:
    """Mean per-dimension std of l2-normalised outputs: about 1/sqrt(dim) when healthy, 0 on collapse."""
    return F.normalize(z.detach(), dim=1).std(dim=0).mean().item()


def train_epoch(model: nn.Module, images: torch.Tensor, optimizer: torch.optim.Optimizer,
                cfg: SimSiamConfig, device: torch.device, gen: torch.Generator) -> tuple[float, float]:
    """One epoch of SimSiam on uint8 ``images``; returns (mean loss, mean output std)."""
    model.train()
    losses, stds = [], []
    for step, idx in enumerate(batches(images.shape[0], cfg.batch_size, True, True, gen)):
        if cfg.max_steps_per_epoch is not None and step >= cfg.max_steps_per_epoch:
            break
        x1, x2 = two_views(to_float(images[idx], device))
        p1, p2, z1, z2 = model(x1, x2)
        loss = model.loss(p1, p2, z1, z2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        stds.append(output_std(z1))
    return float(np.mean(losses)) if losses else float("nan"), float(np.mean(stds)) if stds else float("nan")


# --------------------------------------------------------------------------- kNN monitor


def backbone_features(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Features before the projector (``encoder.fc``): what the kNN monitor classifies."""
    if hasattr(encoder, "forward_features"):
        return encoder.forward_features(x)
    captured: list[torch.Tensor] = []
    handle = encoder.fc.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0]))
    try:
        encoder(x)
    finally:
        handle.remove()
    return captured[0]


@torch.no_grad()
def extract_features(model: nn.Module, images: torch.Tensor, device: torch.device,
                     batch_size: int = 512) -> torch.Tensor:
    """L2-normalised backbone features of un-augmented (only normalised) uint8 images."""
    model.eval()
    feats = [F.normalize(backbone_features(model.encoder, normalize(to_float(images[idx], device))), dim=1)
             for idx in batches(images.shape[0], batch_size, False, False)]
    return torch.cat(feats)


def knn_predict(features: torch.Tensor, bank: torch.Tensor, bank_labels: torch.Tensor, num_classes: int,
                k: int = 200, t: float = 0.1) -> torch.Tensor:
    """Weighted kNN (InstDisc / SimSiam CIFAR demo): ``(B,)`` predicted labels.

    ``features`` ``(B, D)`` and ``bank`` ``(N, D)`` are L2-normalised; each of the ``k`` most
    cosine-similar bank items votes for its label with weight ``exp(similarity / t)``.
    """
    k = min(k, bank.shape[0])
    sim, idx = (features @ bank.T).topk(k, dim=1)
    weights = (sim / t).exp()
    one_hot = F.one_hot(bank_labels[idx], num_classes).to(weights.dtype)
    scores = (one_hot * weights.unsqueeze(-1)).sum(dim=1)
    return scores.argmax(dim=1)


@torch.no_grad()
def knn_accuracy(model: nn.Module, train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
                 device: torch.device, k: int = 200, t: float = 0.1, num_classes: int = 10) -> float:
    """Test accuracy (in %) of the kNN classifier whose memory bank is the training set."""
    bank = extract_features(model, train[0], device)
    bank_labels = train[1].to(device)
    correct = 0
    for idx in batches(test[0].shape[0], 512, False, False):
        feats = extract_features(model, test[0][idx], device)
        pred = knn_predict(feats, bank, bank_labels, num_classes, k, t)
        correct += (pred == test[1][idx].to(device)).sum().item()
    return 100.0 * correct / max(test[0].shape[0], 1)


# --------------------------------------------------------------------------- loop and plots


def train(model: nn.Module, data: dict[str, tuple[torch.Tensor, torch.Tensor]], cfg: SimSiamConfig,
          device: torch.device, log: Callable[[str], None] = print) -> list[dict[str, float | None]]:
    """Train for ``cfg.epochs`` epochs; log loss, output std and (every ``knn_every``) kNN accuracy."""
    optimizer = make_optimizer(model, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    history: list[dict[str, float | None]] = []
    for epoch in range(cfg.epochs):
        start = time.time()
        lr = adjust_learning_rate(optimizer, cfg, epoch)
        loss, std = train_epoch(model, data["train"][0], optimizer, cfg, device, gen)
        acc = None
        if (epoch + 1) % cfg.knn_every == 0 or epoch + 1 == cfg.epochs:
            acc = knn_accuracy(model, data["train"], data["test"], device, cfg.knn_k, cfg.knn_t)
        history.append({"epoch": epoch + 1, "lr": lr, "loss": loss, "output_std": std, "knn_acc": acc})
        log(f"epoch {epoch + 1:4d}  lr {lr:.4f}  loss {loss:8.4f}  output std {std:.4f}  "
            f"kNN acc {'-' if acc is None else f'{acc:.2f}%'}  ({time.time() - start:.0f}s)")
    return history


def plot_runs(runs: dict[str, list[dict[str, float | None]]], path: str | os.PathLike,
              smoke: bool = False) -> Path:
    """One PNG with training loss, kNN accuracy and output std against epochs, one line per run.

    ``smoke``: the figure of smoke runs, marked in its title (the caller names the file).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4), constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    for name, history in runs.items():
        for ax, key in zip(axes, ("loss", "knn_acc", "output_std")):
            points = [(h["epoch"], h[key]) for h in history if h.get(key) is not None]
            if points:
                ax.plot(*zip(*points), marker="." if len(points) < 30 else None, label=name)
    for ax, label in zip(axes, ("training loss", "kNN accuracy (%)", "std of l2-normalised z")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(smoke_title("SimSiam on CIFAR-10: " + ", ".join(runs), smoke), fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight", dpi=100)
    return path


# --------------------------------------------------------------------------- CLI


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; defaults are the baseline run."""
    cfg = SimSiamConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default="data/cifar10", help="folder of the CIFAR-10 python batches")
    parser.add_argument("--out", default="simsiam_out", help="folder for histories, plots, checkpoints")
    parser.add_argument("--epochs", type=int, default=cfg.epochs)
    parser.add_argument("--batch-size", type=int, default=cfg.batch_size)
    parser.add_argument("--stop-gradient", action=argparse.BooleanOptionalAction, default=True,
                        help="detach z in the loss (--no-stop-gradient for the ablation)")
    parser.add_argument("--mlp-mode", choices=sorted(MLP_MODES), default="none", help="predictor ablation")
    parser.add_argument("--fix-pred-lr", action="store_true", help="constant learning rate for the predictor")
    parser.add_argument("--knn-k", type=int, default=cfg.knn_k)
    parser.add_argument("--knn-t", type=float, default=cfg.knn_t)
    parser.add_argument("--knn-every", type=int, default=cfg.knn_every)
    parser.add_argument("--seed", type=int, default=cfg.seed)
    parser.add_argument("--name", default=None, help="run name for output files (default: from the flags)")
    parser.add_argument("--plot-runs", nargs="+", default=None, metavar="HISTORY_JSON",
                        help="no training: plot saved histories together")
    parser.add_argument("--no-download", action="store_true", help="never try the network")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--smoke", action="store_true",
                        help="synthetic data, tiny network, 2 steps: checks the code in seconds")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> SimSiamConfig:
    """The run's hyperparameters; ``--smoke`` shrinks the network, data and epochs."""
    cfg = SimSiamConfig(epochs=args.epochs, batch_size=args.batch_size, stop_gradient=args.stop_gradient,
                        mlp_mode=MLP_MODES[args.mlp_mode], fix_pred_lr=args.fix_pred_lr, knn_k=args.knn_k,
                        knn_t=args.knn_t, knn_every=args.knn_every, seed=args.seed)
    if args.smoke:
        cfg = dataclasses.replace(cfg, epochs=2, batch_size=8, dim=32, pred_dim=8, width=4,
                                  max_steps_per_epoch=1)
    return cfg


def run_name(cfg: SimSiamConfig) -> str:
    """A file-name friendly summary of the ablation flags."""
    return f"sg_{'on' if cfg.stop_gradient else 'off'}-mlp_{cfg.mlp_mode or 'none'}"


def main(argv: Sequence[str] | None = None) -> list[Path]:
    """Train one run (or only plot saved runs); write its history JSON, curves PNG and weights."""
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.plot_runs:
        runs = {Path(p).name.replace("_history.json", ""): json.loads(Path(p).read_text()) for p in args.plot_runs}
        smoke = args.smoke or any(is_smoke_name(name) for name in runs)
        return [plot_runs(runs, out / smoke_name("comparison.png", smoke), smoke)]
    cfg = config_from_args(args)
    torch.manual_seed(cfg.seed)
    device = torch.device(args.device)
    if args.smoke:
        data = {"train": synthetic_cifar(32, 1), "test": synthetic_cifar(8, 2)}
    else:
        data = load_cifar10(args.data_dir, download=not args.no_download)
    model = build_model(cfg).to(device)
    history = train(model, data, cfg, device)
    name = smoke_name(args.name or run_name(cfg), args.smoke)
    paths = [out / f"{name}_history.json", out / f"{name}.pt"]
    paths[0].write_text(json.dumps(history, indent=1))
    torch.save({"model": model.state_dict(), "config": dataclasses.asdict(cfg)}, paths[1])
    paths.append(plot_runs({name: history}, out / f"{name}_curves.png", args.smoke))
    print("wrote " + ", ".join(str(p) for p in paths))
    return paths


if __name__ == "__main__":
    sys.exit(main_or_exit(main))
