"""Small, fast modules the probes plug into the student's code: a backbone for
SimSiam and critics whose expected Lipschitz penalty is known in closed form."""
from __future__ import annotations

import torch
import torch.nn as nn


class TinyEncoder(nn.Module):
    """A stand-in for ResNet with the same contract: ``num_classes``,
    ``zero_init_residual`` and a final linear layer named ``fc``."""

    def __init__(self, num_classes: int = 16, zero_init_residual: bool = False, width: int = 4, hidden: int = 12):
        super().__init__()
        self.conv = nn.Conv2d(3, width, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(width)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.proj = nn.Linear(width * 4, hidden)
        self.fc = nn.Linear(hidden, num_classes)
        if zero_init_residual:
            nn.init.ones_(self.bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool(torch.relu(self.bn(self.conv(x)))).flatten(1)
        return self.fc(torch.relu(self.proj(h)))


class MLPCritic(nn.Module):
    """A generic smooth critic for the value of ``vf_wasserstein_distance``."""

    def __init__(self, in_features: int, hidden: int = 16):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class LinearCritic(nn.Module):
    """``f(x) = <w, x> + b``: its gradient is ``w`` everywhere, so the penalty is
    ``max(0, ||w|| - 1)^2`` whatever ``t`` is."""

    def __init__(self, in_features: int):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(in_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.flatten(x))


class QuadraticCritic(nn.Module):
    """``f(x) = 0.5 * c * ||x||^2``: the gradient norm at ``x_hat`` is ``c * ||x_hat||``,
    which crosses 1 along the segment, separating one- from two-sided penalties and
    per-sample from per-element interpolation."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.scale * x.reshape(x.shape[0], -1).pow(2).sum(dim=1, keepdim=True)


def build_critic(kind: str, in_features: int) -> nn.Module:
    if kind == "mlp":
        return MLPCritic(in_features)
    if kind == "linear":
        return LinearCritic(in_features)
    if kind == "quadratic":
        return QuadraticCritic()
    raise ValueError(f"unknown critic kind {kind!r}")
