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
    m = mu.double()
    t = target.double()
    # target is exactly 0. or 1., so pick the matching log term per feature
    ll = torch.where(t > 0.5, torch.log(m), torch.log1p(-m))
    return ll.sum(dim=1).to(mu.dtype)


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
    m, lv, x = mu.double(), logvar.double(), z.double()
    diff = x - m
    maha = torch.einsum('bd,bd,bd->b', diff, diff, torch.exp(-lv))
    D = mu.shape[1]
    out = -0.5 * (D * math.log(2 * math.pi) + lv.sum(dim=1) + maha)
    return out.to(mu.dtype)


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
    y64 = y.double()
    a = y64.amax(dim=1, keepdim=True)
    # a row whose max is +-inf would give inf - inf = nan: shift by 0 there instead
    a = torch.where(torch.isfinite(a), a, torch.zeros_like(a))
    out = (y64 - a).exp().mean(dim=1).log().add_(a.squeeze(1))
    return out.to(y.dtype)


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
    mq, lq, mp, lp = (t.double() for t in (mu_q, logvar_q, mu_p, logvar_p))
    d = mq - mp
    ratio = torch.exp(lq - lp)                    # var_q / var_p
    per = ratio + torch.einsum('bd,bd->bd', d * d, torch.exp(-lp)) - 1.0 - (lq - lp)
    return (0.5 * torch.einsum('bd->b', per)).to(mu_q.dtype)


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
    B, D = mu_q.shape
    S = num_samples
    eps = torch.randn(B, S, D, dtype=mu_q.dtype, device=mu_q.device)   # (B, S, D) layout
    z = eps.mul(torch.exp(0.5 * logvar_q).unsqueeze(1)).add_(mu_q.unsqueeze(1))
    rep = lambda t: t.unsqueeze(1).expand(B, S, D).reshape(B * S, D)
    z = z.reshape(B * S, D)
    diff = log_likelihood_normal(rep(mu_q), rep(logvar_q), z) \
        - log_likelihood_normal(rep(mu_p), rep(logvar_p), z)
    return diff.view(B, S).mean(dim=1)
