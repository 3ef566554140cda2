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
    import torch.nn.functional as F
    return -F.binary_cross_entropy(mu, target, reduction="none").sum(dim=-1)


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
    from torch.distributions import Normal
    return Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(dim=-1)


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
    return torch.logsumexp(y, dim=1) - math.log(y.shape[1])


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
    from torch.distributions import Normal, kl_divergence
    q = Normal(mu_q, torch.exp(0.5 * logvar_q))
    p = Normal(mu_p, torch.exp(0.5 * logvar_p))
    return kl_divergence(q, p).sum(dim=-1)


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
    from torch.distributions import Normal
    q = Normal(mu_q, torch.exp(0.5 * logvar_q))
    p = Normal(mu_p, torch.exp(0.5 * logvar_p))
    z = q.rsample((num_samples,))  # (S, B, D), z = mu_q + std_q * eps
    return (q.log_prob(z) - p.log_prob(z)).sum(dim=-1).mean(dim=0)
