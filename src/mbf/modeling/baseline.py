"""TransReID-style global-feature baseline (MODEL.NAME 'transreid'): the CLS feature, one BNNeck."""
from __future__ import annotations

import torch
from torch import nn

from .converters import reference_transreid_to_ours
from .heads import BackboneModel, BNNeck
from .outputs import MBFOutput


class TransReIDBaseline(BackboneModel):
    """Train mode -> MBFOutput(scores=[logits], feats=[CLS feature before BN]);
    eval mode -> the CLS feature after ('after') or before ('before') the BNNeck [B, D], the
    single "global" block of :meth:`~mbf.modeling.heads.BackboneModel.descriptor_layout`.
    The backbone needs the ``global_feature`` capability (:mod:`mbf.modeling.backbone`)."""

    def __init__(self, backbone: nn.Module, num_classes: int, neck_feat: str = "after"):
        super().__init__()
        if neck_feat not in ("after", "before"):
            raise ValueError(f"neck_feat must be 'after' or 'before', got {neck_feat!r}")
        self.backbone = backbone
        self.neck = BNNeck(backbone.embed_dim, num_classes)
        self.neck_feat = neck_feat

    @property
    def descriptor_dim(self) -> int:
        return self.backbone.embed_dim

    def forward(self, img: torch.Tensor, label=None, cam_label=None, view_label=None, occluded: bool = False):
        feat = self.backbone.forward_cls(img, cam_label, view_label)
        bn = self.neck(feat)
        if self.training:
            return MBFOutput(scores=[self.neck.classifier(bn)], feats=[feat])
        return bn if self.neck_feat == "after" else feat

    def from_reference(self, state):
        return reference_transreid_to_ours(state)
