"""Run the lazy initialisations of torch and numpy once in the zygote, so that every
forked worker inherits them instead of paying for them per probe."""
from __future__ import annotations

import math  # noqa: F401  (students import it; keep it resident)

import numpy as np
import numpy.random  # noqa: F401  (imported lazily by np.random.seed otherwise)
import torch
import torch.distributions  # noqa: F401
import torch.nn.functional as F

from autograder.worker.models import Critic, TinyEncoder


def warm_up() -> None:
    np.random.seed(0)
    torch.manual_seed(0)
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    encoder = TinyEncoder(num_classes=4, zero_init_residual=True).eval()
    out = encoder(x)
    loss = F.cosine_similarity(out, out.detach() + 1.0, dim=1).mean() + torch.logsumexp(out, dim=1).mean()
    (grad,) = torch.autograd.grad(loss, x, create_graph=True)
    grad.reshape(4, -1).norm(dim=1).clamp(min=0.0).pow(2).mean().backward()
    critic = Critic(3)
    critic(torch.rand(2, 3)).sum().backward()
    torch.distributions.Normal(torch.zeros(2), torch.ones(2)).rsample().sum()
    torch.autograd.gradcheck(lambda a: (a * a).sum(), (torch.rand(2, dtype=torch.float64, requires_grad=True),))
