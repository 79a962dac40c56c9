"""Foreground recovery decoder (docs/METHOD.md, section 5).

Data flow of the reference, kept exactly: every layer's query is the same learned query
embedding (a zero prototype plus the embedding), its keys/values are the previous layer's
output (the part-weighted patch features for the first layer), the attention block is
post-norm with a residual, and the feed-forward output is added to a dropped-out copy of
itself (no residual around it) before the second norm. A 1x1 Conv1d then maps the Q query
outputs to the P recovered patch tokens.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DecoderLayer(nn.Module):
    """Cross-attention (post-norm, residual) followed by a ReLU feed-forward (post-norm)."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int = 2048, dropout: float = 0.1):
        super().__init__()
        self.cross_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.drop_attn = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ffn_dim)
        self.drop_ffn = nn.Dropout(dropout)
        self.fc2 = nn.Linear(ffn_dim, dim)
        self.drop_out = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """query [B, Q, D] attends to memory [B, M, D] -> [B, Q, D]."""
        attended = self.cross_attn(query, memory, memory, need_weights=False)[0]
        x = self.norm1(query + self.drop_attn(attended))
        x = self.fc2(self.drop_ffn(F.relu(self.fc1(x))))
        return self.norm2(x + self.drop_out(x))


class RecoveryDecoder(nn.Module):
    """Learned queries read the foreground patches and are mapped back to P patch tokens.

    Args:
        dim: width D; num_patches: P; num_queries: Q (MODEL.QUERY_NUM);
        num_layers, num_heads, ffn_dim, dropout: MODEL.NUM_DECODER_LAYER, NUM_HEAD,
        DECODER_FFN_DIM, DECODER_DROP_RATE.
    """

    def __init__(
        self,
        dim: int,
        num_patches: int,
        num_queries: int = 4,
        num_layers: int = 2,
        num_heads: int = 8,
        ffn_dim: int = 2048,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.query_embed = nn.Parameter(torch.randn(num_queries, dim))  # nn.Embedding's N(0, 1)
        first = DecoderLayer(dim, num_heads, ffn_dim, dropout)
        self.layers = nn.ModuleList([first])
        for _ in range(num_layers - 1):  # the reference clones one initialised layer
            layer = DecoderLayer(dim, num_heads, ffn_dim, dropout)
            layer.load_state_dict(first.state_dict())
            self.layers.append(layer)
        self.norm = nn.LayerNorm(dim)
        self.to_patches = nn.Conv1d(num_queries, num_patches, kernel_size=1)

    def forward(self, patches: torch.Tensor, part_probs: torch.Tensor) -> torch.Tensor:
        """patches [B, P, D], part probabilities [B, K, P] -> recovered patch tokens [B, P, D]."""
        memory = patches * part_probs.sum(dim=1).unsqueeze(-1)
        query = self.query_embed.unsqueeze(0).expand(patches.shape[0], -1, -1)
        for layer in self.layers:
            memory = layer(query, memory)
        # the 1x1 Conv1d over the Q query channels, as one matrix product [P, Q] @ [B, Q, D]
        weight, bias = self.to_patches.weight[:, :, 0], self.to_patches.bias
        return torch.matmul(weight, self.norm(memory)) + bias[:, None]
