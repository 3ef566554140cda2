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


class Critic(nn.Module):
    """The critic of every 2.1 test: a smooth scalar function of the flattened input, a
    tanh layer plus linear and quadratic terms. Its parameters are drawn anew for every
    submission, all of them nonzero, so its gradient changes from point to point."""

    def __init__(self, in_features: int, hidden: int = 16):
        super().__init__()
        self.hidden = nn.Linear(in_features, hidden)
        self.out = nn.Linear(hidden, 1)
        self.linear = nn.Linear(in_features, 1, bias=False)
        self.curvature = nn.Parameter(torch.zeros(()))
        self.centre = nn.Parameter(torch.zeros(in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        bowl = 0.5 * self.curvature * (flat - self.centre).pow(2).sum(dim=1, keepdim=True)
        return self.out(torch.tanh(self.hidden(flat))) + self.linear(flat) + bowl
