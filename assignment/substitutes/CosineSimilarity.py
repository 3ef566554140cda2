# Correct callee substituted into q3_solution while grading SimSiam.loss (part 3.3), so a bug in
# part 3.2 is charged to 3.2 only. Sent to the worker with that probe alone; not in the student kit.
import torch
import torch.nn as nn


class CosineSimilarity(nn.Module):
    def __init__(self, dim=1, eps=1e-8):
        super().__init__()
        self.dim = dim
        self.eps = eps

    def forward(self, x1, x2):
        norms = x1.norm(2, dim=self.dim) * x2.norm(2, dim=self.dim)
        return (x1 * x2).sum(dim=self.dim) / torch.clamp(norms, min=self.eps)
