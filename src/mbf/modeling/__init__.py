"""The MBF network (ViT backbone, foreground separator, recovery decoder), the global-feature
baseline, weight converters and ``build_model``."""

from .baseline import TransReIDBaseline
from .build import build_backbone, build_model, build_model_from_checkpoint
from .converters import (
    imagenet_to_backbone,
    load_strict,
    read_state_dict,
    reference_mbf_to_ours,
    reference_transreid_to_ours,
)
from .heads import BNNeck
from .mbf import MBF, MBFOutput
from .recovery import RecoveryDecoder
from .separator import ForegroundSeparator, PatchClassifier
from .vit import BACKBONES, BackboneSpec, VisionTransformerReID, backbone_spec, feature_grid

__all__ = [
    "build_model", "build_model_from_checkpoint", "build_backbone", "MBF", "MBFOutput", "TransReIDBaseline", "VisionTransformerReID",
    "BACKBONES", "BackboneSpec", "backbone_spec", "feature_grid", "ForegroundSeparator", "PatchClassifier",
    "RecoveryDecoder", "BNNeck", "read_state_dict", "load_strict", "imagenet_to_backbone",
    "reference_mbf_to_ours", "reference_transreid_to_ours",
]
