"""The tiny assignment's solution."""
import torch


def softplus(x):
    """log(1 + exp(x)), elementwise, finite for any finite x."""
    return torch.clamp(x, min=0) + torch.log1p(torch.exp(-torch.abs(x)))
