"""The tiny assignment's solution."""
import torch


def softplus(x):
    """log(1 + exp(x)), elementwise, finite for any finite x."""
    raise NotImplementedError("softplus")
