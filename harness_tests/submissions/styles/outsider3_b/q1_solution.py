"""HW3 Question 1: likelihoods and KL divergences for a VAE.

Every function works on a batch: the first dimension ``B`` indexes independent
examples and every result has shape ``(B,)``, one value per example. Inputs are
``float32`` tensors unless stated otherwise. Keep the computation in torch so
that gradients flow back to every input.
"""
import math

import torch


def log_likelihood_bernoulli(mu, target):
    """Log-likelihood of binary targets under independent Bernoulli distributions.

    Args:
        mu: ``(B, D)`` float tensor of Bernoulli means, each strictly in (0, 1).
        target: ``(B, D)`` float tensor of binary values (0. or 1.).

    Returns:
        ``(B,)`` float tensor: for each example, the sum over the ``D`` features of
        ``target * log(mu) + (1 - target) * log(1 - mu)``.
    """
    per_feature = target * torch.log(mu) + (1.0 - target) * torch.log(1.0 - mu)
    return torch.sum(per_feature, dim=1)


def log_likelihood_normal(mu, logvar, z):
    """Log-density of ``z`` under a diagonal Gaussian ``N(mu, diag(exp(logvar)))``.

    Args:
        mu: ``(B, D)`` float tensor of means.
        logvar: ``(B, D)`` float tensor of log-variances (``log sigma^2``, not ``log sigma``).
        z: ``(B, D)`` float tensor of points at which to evaluate the density.

    Returns:
        ``(B,)`` float tensor: for each example, the sum over the ``D`` features of
        ``-0.5 * (log(2 * pi) + logvar + (z - mu)^2 / exp(logvar))``, the constant included.
    """
    log_2pi = math.log(2.0 * math.pi)
    sq = (z - mu) ** 2
    per_feature = -0.5 * (log_2pi + logvar + sq / torch.exp(logvar))
    return torch.sum(per_feature, dim=1)


def log_mean_exp(y):
    """Numerically stable ``log(mean_k exp(y[:, k]))``.

    Args:
        y: ``(B, K)`` float tensor, for instance ``K`` importance-sampling log-weights
            per example. Values may be very large in magnitude (around -1000 or +1000).

    Returns:
        ``(B,)`` float tensor ``log((1 / K) * sum_k exp(y[:, k]))``. Use the max trick
        (subtract the per-row maximum before exponentiating, add it back after) so that
        the result stays finite where a naive ``exp`` would overflow or underflow.
    """
    K = y.shape[1]
    a, _ = torch.max(y, dim=1, keepdim=True)          # (B, 1)
    shifted = torch.exp(y - a)                        # every entry in (0, 1]
    mean = torch.sum(shifted, dim=1) / K              # (B,)
    return torch.log(mean) + a.squeeze(1)


def kl_gaussian_gaussian_analytic(mu_q, logvar_q, mu_p, logvar_p):
    """Closed-form ``KL(q || p)`` between two diagonal Gaussians.

    ``q = N(mu_q, diag(exp(logvar_q)))`` and ``p = N(mu_p, diag(exp(logvar_p)))``.
    Note the direction: the expectation is taken under ``q`` (the first pair of arguments).

    Args:
        mu_q, logvar_q: ``(B, D)`` float tensors, mean and log-variance of ``q``.
        mu_p, logvar_p: ``(B, D)`` float tensors, mean and log-variance of ``p``.

    Returns:
        ``(B,)`` float tensor: for each example, the KL divergence summed over the ``D``
        features.
    """
    var_q = torch.exp(logvar_q)
    var_p = torch.exp(logvar_p)
    per_feature = 0.5 * (logvar_p - logvar_q + (var_q + (mu_q - mu_p) ** 2) / var_p - 1.0)
    return torch.sum(per_feature, dim=1)


def kl_gaussian_gaussian_mc(mu_q, logvar_q, mu_p, logvar_p, num_samples=1):
    """Monte Carlo estimate of ``KL(q || p)`` between two diagonal Gaussians.

    Draw ``num_samples`` samples ``z ~ q`` per example with the reparameterisation
    ``z = mu_q + exp(0.5 * logvar_q) * eps`` (``eps ~ N(0, I)``, from torch's global
    random generator: do not reseed it), and average ``log q(z) - log p(z)`` over them.

    Args:
        mu_q, logvar_q: ``(B, D)`` float tensors, mean and log-variance of ``q``.
        mu_p, logvar_p: ``(B, D)`` float tensors, mean and log-variance of ``p``.
        num_samples: int, the number of samples drawn per example.

    Returns:
        ``(B,)`` float tensor, the estimate for each example (differentiable with
        respect to every input, thanks to the reparameterisation).
    """
    std_q = torch.exp(0.5 * logvar_q)
    total = torch.zeros(mu_q.shape[0], dtype=mu_q.dtype, device=mu_q.device)
    for _ in range(num_samples):
        eps = torch.randn_like(mu_q)
        z = mu_q + std_q * eps
        total = total + (log_likelihood_normal(mu_q, logvar_q, z)
                         - log_likelihood_normal(mu_p, logvar_p, z))
    return total / num_samples
