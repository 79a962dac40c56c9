"""BNNeck: BatchNorm1d with a frozen bias followed by a bias-free linear ID classifier."""
from __future__ import annotations

import torch
from torch import nn


class BNNeck(nn.Module):
    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(dim)
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)
        self.bn.bias.requires_grad_(False)
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """The normalised feature (call ``classifier`` on it for the ID logits)."""
        return self.bn(feat)
