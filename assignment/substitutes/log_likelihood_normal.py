# Correct callee substituted into q1_solution while grading a caller (part 1.5), so a bug in
# part 1.2 is charged to 1.2 only. Sent to the worker with that probe alone; not in the student kit.
# Sums over the last dimension: a vectorised caller may pass (S, B, D) as well as (B, D).
import math

import torch


def log_likelihood_normal(mu, logvar, z):
    return -0.5 * (math.log(2.0 * math.pi) + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(dim=-1)
