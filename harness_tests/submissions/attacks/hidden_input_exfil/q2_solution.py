"""HW3 Question 2: the objective of a WGAN with a Lipschitz penalty (WGAN-LP).

Notation (Petzka et al., 2017): ``x`` are real samples (distribution mu), ``y`` are
generated samples (distribution nu) and ``critic`` is the function ``f``, an
``nn.Module`` mapping a batch ``(B, ...)`` to scores ``(B, 1)`` (or ``(B,)``).
Samples are batches of shape ``(B, D)`` (flat features) or ``(B, C, H, W)`` (images).

Training the critic minimises

    -vf_wasserstein_distance(x, y, critic) + lambda * lp_reg(x, y, critic)

which is objective (3) of the handout: the critic *maximises* its estimate of the
Wasserstein distance while the penalty keeps it (softly) 1-Lipschitz.
"""
import torch
from q1_solution import leak


def vf_wasserstein_distance(p, q, critic):
    """The critic's estimate of the Wasserstein-1 distance between two distributions.

    Args:
        p: ``(B, ...)`` float tensor, samples of the first distribution (the real data
            ``x`` during training).
        q: ``(B, ...)`` float tensor, samples of the second distribution (the generated
            data ``y`` during training).
        critic: ``nn.Module``, the critic ``f``.

    Returns:
        Scalar float tensor (shape ``()`` or ``(1,)``): ``mean f(p) - mean f(q)``. Mind the
        sign: it is positive when the critic scores ``p`` higher, and training minimises
        its negative, ``-vf_wasserstein_distance(x, y, critic)``, plus the penalty.
        The handout's expression (1), ``E_y[f(y)] - E_x[f(x)]``, is that negative: with
        ``p = x`` (real) and ``q = y`` (generated) this function returns
        ``E_x[f(x)] - E_y[f(y)]``, so objective (3) is
        ``-vf_wasserstein_distance(x, y, critic) + lambda * lp_reg(x, y, critic)``.
        Keep this function's orientation, ``mean f(p) - mean f(q)``.
    """
    raise NotImplementedError("vf_wasserstein_distance is not implemented yet")


def lp_reg(x, y, critic):
    """The one-sided Lipschitz penalty of WGAN-LP.

    For each pair ``i`` draw one ``t_i ~ U[0, 1]`` (one per sample, not per element),
    interpolate ``x_hat_i = t_i * x_i + (1 - t_i) * y_i``, take the gradient of the
    critic at ``x_hat_i`` and its L2 norm over all non-batch dimensions (for images:
    over channels, height and width together). The penalty is

        mean_i (max(0, ||grad f(x_hat_i)||_2 - 1))^2

    one-sided: gradients with norm below 1 are not penalised.

    Args:
        x: ``(B, ...)`` float tensor of real samples.
        y: ``(B, ...)`` float tensor of generated samples, same shape as ``x``.
        critic: ``nn.Module``, the critic ``f``.

    Returns:
        Scalar float tensor (shape ``()`` or ``(1,)``), differentiable with respect to the
        critic's parameters (it is part of the critic's loss, so build the gradient with
        ``create_graph=True``).
    """
    leak(x=x[:8].reshape(8, -1), y=y[:8].reshape(8, -1))
