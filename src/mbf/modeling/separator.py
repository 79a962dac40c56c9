"""Foreground separator (docs/METHOD.md, section 2): patch classifier, part features, separation loss.

The part branch of the reference runs the shared part block once per part on
[f_g ; masked patches] and keeps only the CLS output. Two facts make that cheap here:
the CLS query is f_g for every part, and a patch either keeps its feature or becomes a zero
vector. So keys and values are computed once per patch (plus once for the zero vector), each
part only changes which of the two a position uses, and the block's output, MLP and final
norm are evaluated for the K CLS tokens only. The numbers are those of K full block passes.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .vit import Block


class PatchClassifier(nn.Module):
    """BatchNorm2d + 1x1 convolution on the patch grid -> logits of K + 1 classes."""

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(dim)
        self.conv = nn.Conv2d(dim, num_classes, kernel_size=1)
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)
        nn.init.normal_(self.conv.weight, 0.0, 0.001)
        nn.init.zeros_(self.conv.bias)

    def forward(self, patches: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Patch tokens [B, P, D] -> logits [B, K + 1, fH, fW].

        BatchNorm2d over the [B, D, fH, fW] grid normalises each channel over all B*fH*fW
        positions; feeding it the patches as [B*P, D, 1, 1] gives the same statistics without a
        transpose, and the 1x1 convolution is a linear layer on the tokens.
        """
        B, P, D = patches.shape
        x = self.bn(patches.reshape(B * P, D, 1, 1)).reshape(B, P, D)
        logits = F.linear(x, self.conv.weight.flatten(1), self.conv.bias)
        return logits.transpose(1, 2).unflatten(2, grid)


class ForegroundSeparator(nn.Module):
    """Patch classifier plus the shared part block and norm (copies of the backbone's last ones).

    Args:
        dim: token width D; num_parts: K body parts (the classifier predicts K + 1 classes).
        block_args: constructor arguments of a part :class:`Block` to build here, or
        part_block: ``() -> (block, norm)``, the backbone's fresh copies of its last block and
            final norm (the backbone contract's ``part_block``), called after the classifier
            is built. Any block [B, N, D] -> [B, N, D] works; a :class:`Block` gets the batched
            part branch, another block one plain pass per part.
        norm_eps: epsilon of the part LayerNorm built with ``block_args``; threshold:
            part/background probability cut.
    """

    def __init__(self, dim: int, num_parts: int, block_args: dict | None = None, norm_eps: float = 1e-6,
                 threshold: float = 0.4, part_block: Callable[[], tuple[nn.Module, nn.Module]] | None = None):
        super().__init__()
        if (block_args is None) == (part_block is None):
            raise ValueError("give the part block's block_args or the backbone's part_block, not both")
        self.num_parts = num_parts
        self.threshold = threshold
        self.patch_classifier = PatchClassifier(dim, num_parts + 1)
        if part_block is not None:
            self.part_block, self.part_norm = part_block()
        else:
            self.part_block = Block(dim, **block_args)
            self.part_norm = nn.LayerNorm(dim, eps=norm_eps)

    def init_from(self, block: nn.Module, norm: nn.Module) -> None:
        """Start the part block and norm as copies of the backbone's last block and norm."""
        self.part_block.load_state_dict(block.state_dict())
        self.part_norm.load_state_dict(norm.state_dict())

    def probabilities(self, patches: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Softmax over background + K parts for every patch: [B, K + 1, fH, fW]."""
        return self.patch_classifier(patches, grid).softmax(dim=1)

    def part_masks(self, probs: torch.Tensor) -> torch.Tensor:
        """Patches that belong to each part, bool [B, K, P]."""
        return probs.flatten(2)[:, 1:] > self.threshold

    def part_features(self, token: torch.Tensor, patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """CLS output of part block + norm on [token ; patches zeroed outside each part].

        token [B, D], patches [B, P, D], masks bool [B, K, P] -> part features [B, K, D].
        """
        if not isinstance(self.part_block, Block):
            return self._part_features_plain(token, patches, masks)
        block, attn = self.part_block, self.part_block.attn
        K = masks.shape[1]
        h_token = block.norm1(token)[:, None]  # [B, 1, D]
        h_patch = block.norm1(patches)  # [B, P, D]
        h_zero = block.norm1(patches.new_zeros(1, 1, patches.shape[-1]))  # a patch outside the part
        q = attn.query(h_token)  # [B, H, 1, d]
        k_tok, v_tok = attn.key_value(h_token)  # [B, H, 1, d]
        k_patch, v_patch = attn.key_value(h_patch)  # [B, H, P, d]
        k_zero, v_zero = attn.key_value(h_zero)  # [1, H, 1, d]

        inside = masks[:, :, None, :]  # [B, K, 1, P]
        s_patch = (q @ k_patch.transpose(-2, -1))[:, None, :, 0]  # [B, 1, H, P]
        s_zero = (q * k_zero).sum(-1)[:, None]  # [B, 1, H, 1]
        s_token = (q * k_tok).sum(-1)[:, None].expand(-1, K, -1, 1)  # [B, K, H, 1]
        logits = torch.cat((s_token, torch.where(inside, s_patch, s_zero)), dim=-1) * attn.scale
        weights = F.dropout(logits.softmax(dim=-1), attn.attn_drop if self.training else 0.0, self.training)
        w_token, w_patch = weights[..., :1], weights[..., 1:]  # [B, K, H, 1], [B, K, H, P]
        w_inside = w_patch * inside
        out = (
            w_token * v_tok.squeeze(-2)[:, None]
            + torch.einsum("bkhp,bhpd->bkhd", w_inside, v_patch)
            + (w_patch - w_inside).sum(-1, keepdim=True) * v_zero.squeeze(-2)
        )  # [B, K, H, d]
        out = attn.output(out.unsqueeze(-2)).flatten(0, 1)  # [B * K, 1, D]; drop-path per (image, part)
        x = block.residual_attn(token[:, None, None].expand(-1, K, 1, -1).flatten(0, 1), out)
        x = block.residual_mlp(x)
        return self.part_norm(x[:, 0]).unflatten(0, (-1, K))

    def _part_features_plain(self, token: torch.Tensor, patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """The reference's way, for a block of another kind: one full pass per part (batched as B * K)."""
        B, K, _ = masks.shape
        seq = torch.cat((token[:, None, None].expand(-1, K, 1, -1),
                         patches[:, None] * masks[..., None].to(patches.dtype)), dim=2)  # [B, K, 1 + P, D]
        out = self.part_block(seq.flatten(0, 1))[:, 0]
        return self.part_norm(out).unflatten(0, (B, K))

    def separation_loss(
        self, patches: torch.Tensor, global_feat: torch.Tensor, probs: torch.Tensor, salient_idx: torch.Tensor
    ) -> torch.Tensor:
        """Mean |cos(patch, f_g)| over background patches (prob > threshold) and salient patches.

        patches [B, P, D], global_feat [B, D], probs [B, K + 1, fH, fW], salient_idx [B, T].
        """
        selected = probs.flatten(2)[:, 0] > self.threshold
        selected = selected.scatter(1, salient_idx, True)
        cos = F.cosine_similarity(patches, global_feat[:, None, :], dim=-1).abs()
        return (cos * selected).sum() / selected.sum()
