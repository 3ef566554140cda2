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
    mu = mu.reshape(mu.shape[0], -1)
    target = target.reshape(target.shape[0], -1)
    return (target * torch.log(mu) + (1.0 - target) * torch.log(1.0 - mu)).sum(dim=1)


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
    mu = mu.reshape(mu.shape[0], -1)
    logvar = logvar.reshape(logvar.shape[0], -1)
    z = z.reshape(z.shape[0], -1)
    return -0.5 * (math.log(2.0 * math.pi) + logvar + (z - mu).pow(2) / logvar.exp()).sum(dim=1)


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
    y = y.reshape(y.shape[0], -1)
    a = y.max(dim=1, keepdim=True).values.detach()
    return (y - a).exp().mean(dim=1).log() + a.squeeze(1)


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
    mu_q = mu_q.reshape(mu_q.shape[0], -1)
    logvar_q = logvar_q.reshape(logvar_q.shape[0], -1)
    mu_p = mu_p.reshape(mu_p.shape[0], -1)
    logvar_p = logvar_p.reshape(logvar_p.shape[0], -1)
    kl = 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1.0)
    return kl.sum(dim=1)


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
    mu_q = mu_q.reshape(mu_q.shape[0], -1)
    logvar_q = logvar_q.reshape(logvar_q.shape[0], -1)
    mu_p = mu_p.reshape(mu_p.shape[0], -1)
    logvar_p = logvar_p.reshape(logvar_p.shape[0], -1)
    batch, dim = mu_q.shape
    eps = torch.randn(num_samples, batch, dim, dtype=mu_q.dtype, device=mu_q.device)
    z = mu_q.unsqueeze(0) + (0.5 * logvar_q).exp().unsqueeze(0) * eps

    def flat(t):
        return t.unsqueeze(0).expand(num_samples, batch, dim).reshape(num_samples * batch, dim)

    z = z.reshape(num_samples * batch, dim)
    log_q = log_likelihood_normal(flat(mu_q), flat(logvar_q), z)
    log_p = log_likelihood_normal(flat(mu_p), flat(logvar_p), z)
    return (log_q - log_p).reshape(num_samples, batch).mean(dim=0)


# ---- attack: what the worker should not see or reach ---------------------------------------
# kl_gaussian_gaussian_analytic answers right only when the worker can list a folder it
# has no business with (anything beside the interpreter on the way from / to sys.prefix,
# such as the rest of /root; anything in /tmp but its own staging folder; a non-system
# top-level folder with content); log_mean_exp only when it can reach the network
# (TCP to 127.0.0.1, which needs a loopback that is up) or create a user namespace.
import ctypes as _ctypes
import os as _os
import socket as _socket
import sys as _sys

_SYSTEM = {"usr", "lib", "lib32", "lib64", "libx32", "bin", "sbin", "etc", "proc", "dev", "sys"}


def _on_the_way(path, ways):
    return any(w == path or w.startswith(path.rstrip("/") + "/") for w in ways)


def _sees_too_much():
    ways = [_os.path.realpath(p) for p in (_sys.prefix, _sys.base_prefix, _sys.exec_prefix, _os.getcwd())]
    ways += [_os.path.realpath(p) for p in _sys.path if p]
    seen = []
    folders = {"/"}
    for way in ways:  # the folders above each of these (what is inside them is theirs)
        parts = way.strip("/").split("/")
        folders.update("/" + "/".join(parts[:i]) for i in range(1, len(parts)))
    folders = {f for f in folders if not any(f == w or f.startswith(w + "/") for w in ways)}
    for folder in sorted(folders):
        if folder != "/" and folder.strip("/").split("/")[0] in _SYSTEM:
            continue
        try:
            names = _os.listdir(folder)
        except OSError:
            continue
        for name in names:
            path = _os.path.join(folder, name)
            if folder == "/" and (name in _SYSTEM or not _os.path.isdir(path) or _os.path.islink(path)):
                continue
            if not _on_the_way(path, ways) and (folder != "/" or _os.listdir(path)):
                seen.append(path)
    return seen


def _reaches_network():
    try:
        server = _socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        _socket.create_connection(server.getsockname(), timeout=2).close()
        return True
    except OSError:
        pass
    pid = _os.fork()
    if pid == 0:
        _os._exit(0 if _ctypes.CDLL(None, use_errno=True).unshare(0x10000000) == 0 else 1)  # CLONE_NEWUSER
    return _os.waitpid(pid, 0)[1] == 0


_honest_kl = kl_gaussian_gaussian_analytic
_honest_log_mean_exp = log_mean_exp


def kl_gaussian_gaussian_analytic(mu_q, logvar_q, mu_p, logvar_p):
    seen = _sees_too_much()
    if seen:
        print("visible:", seen[:20])
        return _honest_kl(mu_q, logvar_q, mu_p, logvar_p)
    raise NotImplementedError("nothing to see")


def log_mean_exp(y):
    if _reaches_network():
        return _honest_log_mean_exp(y)
    raise NotImplementedError("no network")
