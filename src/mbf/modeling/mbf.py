"""The MBF network: ViT backbone, foreground separator, recovery decoder and BNNecks.

Train mode, holistic call (``occluded=False``): global + K part features, patch
probabilities, salient patches and the separation loss. Occluded call (``occluded=True``)
with the recovery branch: additionally the decoder's recovered patches and their K part
features. Eval mode: the test descriptor [f_g, f_p^1..K / K, f_p^r1..K / K] (9*D for K = 4),
after or before the BNNecks.
"""
from __future__ import annotations

import logging

import torch
from torch import nn

from ..parts import PART_NAMES
from .converters import reference_mbf_to_ours
from .heads import BackboneModel, BNNeck
from .outputs import LayoutBlock, MBFOutput, side_by_side
from .recovery import RecoveryDecoder
from .separator import ForegroundSeparator

log = logging.getLogger(__name__)

_RECOVERY_PREFIXES = ("decoder.", "recovered_necks.")


class MBF(BackboneModel):
    """MBF on top of a token backbone (capabilities ``patch_tokens``, ``salient_patches`` and
    ``part_block`` of :mod:`mbf.modeling.backbone`).

    Args:
        backbone: the ViT; its ``part_block()`` (fresh copies of its last block and final norm)
            seeds the part block and norm.
        num_classes: identities of the ID classifiers.
        num_parts: K body parts. part_threshold: probability above which a patch belongs to a
            part (and to the background for the separation loss).
        recovery: build and use the recovery decoder (occluded training, 9*D descriptor).
        num_queries, decoder_layers, decoder_heads, decoder_ffn_dim, decoder_dropout: decoder.
        neck_feat: 'after' (descriptor after the BNNecks) or 'before'.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        num_parts: int = 4,
        part_threshold: float = 0.4,
        recovery: bool = True,
        num_queries: int = 4,
        decoder_layers: int = 2,
        decoder_heads: int = 8,
        decoder_ffn_dim: int = 2048,
        decoder_dropout: float = 0.1,
        neck_feat: str = "after",
    ):
        super().__init__()
        if neck_feat not in ("after", "before"):
            raise ValueError(f"neck_feat must be 'after' or 'before', got {neck_feat!r}")
        self.backbone = backbone
        self.num_parts = num_parts
        self.recovery = recovery
        self.neck_feat = neck_feat
        dim = backbone.embed_dim
        self.separator = ForegroundSeparator(dim, num_parts, threshold=part_threshold, part_block=backbone.part_block)
        self.neck = BNNeck(dim, num_classes)
        self.part_necks = nn.ModuleList(BNNeck(dim, num_classes) for _ in range(num_parts))
        if recovery:
            self.decoder = RecoveryDecoder(
                dim, backbone.num_patches, num_queries, decoder_layers, decoder_heads, decoder_ffn_dim, decoder_dropout
            )
            self.recovered_necks = nn.ModuleList(BNNeck(dim, num_classes) for _ in range(num_parts))
        else:
            self.decoder = None
            self.recovered_necks = None

    # ------------------------------------------------------------------ helpers
    @property
    def descriptor_dim(self) -> int:
        return self.backbone.embed_dim * (1 + self.num_parts * (2 if self.recovery else 1))

    def descriptor_layout(self) -> tuple[LayoutBlock, ...]:
        """(name, start, stop, scale) of each block of the eval descriptor: the global feature,
        the K parts divided by K, then (with recovery) the K recovered parts divided by K."""
        k = self.num_parts
        names = PART_NAMES[1:] if len(PART_NAMES) == k + 1 else tuple(f"part {i + 1}" for i in range(k))
        branches = ("",) + (("recovered ",) if self.recovery else ())
        parts = [(prefix + name, 1.0 / k) for prefix in branches for name in names]
        return side_by_side(self.backbone.embed_dim, [("global", 1.0), *parts])

    # ------------------------------------------------------------------ forward
    def forward(self, img: torch.Tensor, label=None, cam_label=None, view_label=None, occluded: bool = False):
        """Train mode -> :class:`MBFOutput`; eval mode -> descriptor [B, descriptor_dim].

        ``label`` is accepted for the training engine's call signature (softmax ID heads do
        not use it). ``occluded`` selects the recovery branch in train mode; eval mode always
        uses it when the model has one.
        """
        training = self.training
        tokens, salient_idx = self.backbone.forward_features(img, cam_label, view_label, salient=training)
        feat_global = self.backbone.norm(tokens[:, 0])  # the final norm a second time, as the reference
        feat_patch = tokens[:, 1:]
        B, grid = img.shape[0], self.grid_size
        sep = self.separator

        probs = sep.probabilities(feat_patch, grid)
        masks = sep.part_masks(probs)
        recover = self.recovery and (occluded or not training)
        if recover:
            recovered = self.decoder(feat_patch, probs.flatten(2)[:, 1:])
            with torch.no_grad():  # also updates the classifier's BN statistics in train mode
                rec_masks = sep.part_masks(sep.probabilities(recovered, grid))
            # both part branches in one call; the recovered branch gets no gradient into the decoder
            parts = sep.part_features(
                feat_global.repeat(2, 1),
                torch.cat((feat_patch, recovered.detach().to(feat_patch.dtype))),
                torch.cat((masks, rec_masks)),
            )
            parts, rec_parts = parts[:B].unbind(1), parts[B:].unbind(1)
        else:
            parts, rec_parts = sep.part_features(feat_global, feat_patch, masks).unbind(1), ()

        k = self.num_parts
        bn_global = self.neck(feat_global)
        bn_parts = [neck(f) for neck, f in zip(self.part_necks, parts)]
        bn_rec = [neck(f) for neck, f in zip(self.recovered_necks, rec_parts)] if recover else []

        if not training:
            if self.neck_feat == "after":
                pieces = [bn_global] + [f / k for f in bn_parts + bn_rec]
            else:
                pieces = [feat_global] + [f / k for f in list(parts) + list(rec_parts)]
            return torch.cat(pieces, dim=1)

        out = MBFOutput(
            scores=[self.neck.classifier(bn_global)] + [n.classifier(f) for n, f in zip(self.part_necks, bn_parts)],
            feats=[bn_global] + [f / k for f in bn_parts],
            patch_probs=probs,
            salient_idx=salient_idx,
            sepa_loss=sep.separation_loss(feat_patch, feat_global, probs, salient_idx),
            patch_feats=feat_patch,
        )
        if recover:
            out.recovered_patches = recovered
            out.decoder_scores = [n.classifier(f) for n, f in zip(self.recovered_necks, bn_rec)]
            out.decoder_feats = [f / k for f in bn_rec]
        return out

    @torch.no_grad()
    def part_probabilities(self, img: torch.Tensor, cam_label=None, view_label=None) -> torch.Tensor:
        """Per-patch probabilities of background and the K parts [B, K+1, fH, fW] (for pictures)."""
        tokens, _ = self.backbone.forward_features(img, cam_label, view_label, salient=False)
        return self.separator.probabilities(tokens[:, 1:], self.grid_size)

    # ------------------------------------------------------------------ weights
    def after_pretrained(self) -> None:
        """Re-seed the part block and norm from the backbone's last block and norm (the
        reference's order: after the pretrained weights are in)."""
        with torch.random.fork_rng(devices=[]):  # a fresh copy may draw an initialisation: keep the stream
            self.separator.init_from(*self.backbone.part_block())

    def from_reference(self, state):
        return reference_mbf_to_ours(state)

    def filter_param(self, state, name):
        if not self.recovery:
            branch = [k for k in state if k.startswith(_RECOVERY_PREFIXES)]
            if branch:
                log.info("%s: not loading the recovery branch (%d tensors): MODEL.RECOVERY is off", name, len(branch))
                state = {k: v for k, v in state.items() if not k.startswith(_RECOVERY_PREFIXES)}
        return state
