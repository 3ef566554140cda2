"""HW3 Question 3: SimSiam (Chen & He, 2021).

The model building code is provided and mirrors the official SimSiam builder; keep
its module structure as it is (the grader loads state dicts into it). You implement
``SimSiam.forward``, ``CosineSimilarity.forward`` and ``SimSiam.loss``.
"""
import torch
import torch.nn as nn


def bdot(a, b):
    """Batch-wise dot product: ``(B, D)`` and ``(B, D)`` give ``(B,)``."""
    batch, dim = a.shape
    return torch.bmm(a.reshape(batch, 1, dim), b.reshape(batch, dim, 1)).reshape(batch)


class CosineSimilarity(nn.Module):
    """Cosine similarity along a dimension, safe for zero vectors."""

    def __init__(self, dim=1, eps=1e-8):
        super().__init__()
        self.dim = dim
        self.eps = eps

    def forward(self, x1, x2):
        """Cosine similarity of ``x1`` and ``x2`` along ``self.dim``.

        Args:
            x1, x2: float tensors of the same shape, for instance ``(B, D)`` with
                ``self.dim == 1``.

        Returns:
            Float tensor with ``self.dim`` reduced away (``(B,)`` for ``(B, D)`` inputs):
            ``x1 . x2 / max(||x1|| * ||x2||, self.eps)``, the dot product and both L2
            norms taken along ``self.dim``. It is finite (0) when either side is a zero
            vector.
        """
        raise NotImplementedError("CosineSimilarity.forward is not implemented yet")


class SimSiam(nn.Module):
    """Build a SimSiam model around a backbone.

    Args:
        base_encoder: a callable ``base_encoder(num_classes=..., zero_init_residual=...)``
            returning a backbone whose last layer is the linear layer ``fc``.
        dim: feature dimension of the projector's output (default 2048).
        pred_dim: hidden dimension of the predictor (default 512).
        stop_gradient: whether ``forward`` detaches the projections ``z1, z2``.
        MLP_mode: ``None`` (a trained predictor MLP), ``'no_pred_mlp'`` (the predictor
            is the identity) or ``'fixed_random_init'`` (a predictor frozen at a small
            random initialisation).
    """

    def __init__(self, base_encoder, dim=2048, pred_dim=512, stop_gradient=True, MLP_mode=None):
        super(SimSiam, self).__init__()
        self.stop_gradient = stop_gradient
        self.MLP_mode = MLP_mode

        # create the encoder; num_classes is the output fc dimension, zero-initialise last BNs
        self.encoder = base_encoder(num_classes=dim, zero_init_residual=True)

        # build a 3-layer projector
        prev_dim = self.encoder.fc.weight.shape[1]
        self.encoder.fc = nn.Sequential(
            nn.Linear(prev_dim, prev_dim, bias=False),
            nn.BatchNorm1d(prev_dim),
            nn.ReLU(inplace=True),  # first layer
            nn.Linear(prev_dim, prev_dim, bias=False),
            nn.BatchNorm1d(prev_dim),
            nn.ReLU(inplace=True),  # second layer
            self.encoder.fc,
            nn.BatchNorm1d(dim, affine=False),  # output layer
        )
        self.encoder.fc[6].bias.requires_grad = False  # hack: not use bias as it is followed by BN

        # build a 2-layer predictor
        if self.MLP_mode is None:
            self.predictor = nn.Sequential(
                nn.Linear(dim, pred_dim, bias=False),
                nn.BatchNorm1d(pred_dim),
                nn.ReLU(inplace=True),  # hidden layer
                nn.Linear(pred_dim, dim),  # output layer
            )
        elif self.MLP_mode == 'no_pred_mlp':
            self.predictor = nn.Identity()
        elif self.MLP_mode == 'fixed_random_init':
            self.predictor = nn.Sequential(
                nn.Linear(dim, pred_dim, bias=False),
                nn.BatchNorm1d(pred_dim),
                nn.ReLU(inplace=True),  # hidden layer
                nn.Linear(pred_dim, dim),  # output layer
            )
            for module in self.predictor.modules():
                if isinstance(module, nn.Linear):
                    nn.init.normal_(module.weight, mean=0.0, std=0.01)
                    if module.bias is not None:
                        nn.init.zeros_(module.bias)
            for param in self.predictor.parameters():
                param.requires_grad = False
        else:
            raise ValueError(f"unknown MLP_mode {self.MLP_mode!r}")

    def forward(self, x1, x2):
        """Encode and predict both views.

        Args:
            x1, x2: ``(B, C, H, W)`` float tensors, two augmented views of a batch.

        Returns:
            ``(p1, p2, z1, z2)`` in this order: ``z = self.encoder(x)`` of shape
            ``(B, dim)`` and ``p = self.predictor(z)`` of shape ``(B, dim)``. When
            ``self.stop_gradient`` is true, ``z1`` and ``z2`` are returned detached (no
            gradient flows through them) while ``p1`` and ``p2`` keep their graph back to
            the encoder; when it is false nothing is detached.
        """
        raise NotImplementedError("SimSiam.forward is not implemented yet")

    def loss(self, p1, p2, z1, z2, similarity_function='CosineSimilarity'):
        """The symmetric SimSiam loss.

        Args:
            p1, p2: ``(B, dim)`` predictions for the two views.
            z1, z2: ``(B, dim)`` projections for the two views. ``forward`` already
                detaches them when stop-gradient is on; detaching them here too, as
                equation (7) writes ``stop-grad(z)``, is also correct (but then the
                ``stop_gradient=False`` ablation of the report needs a loss that does not).
            similarity_function: name of the similarity, ``'CosineSimilarity'`` (use the
                ``CosineSimilarity`` module of this file).

        Returns:
            Scalar float tensor (shape ``()`` or ``(1,)``):
            ``-0.5 * (mean_i cos(p1_i, z2_i) + mean_i cos(p2_i, z1_i))``.
        """
        raise NotImplementedError("SimSiam.loss is not implemented yet")
