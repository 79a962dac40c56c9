"""The MBF network (ViT backbone, foreground separator, recovery decoder), the global-feature
baseline, their training steps, weight converters, the architecture and backbone registries
and ``build_model``."""

from .baseline import TransReIDBaseline
from .build import architecture, build_backbone, build_model, build_model_from_checkpoint, build_step
from .converters import (
    imagenet_to_backbone,
    load_strict,
    read_state_dict,
    reference_mbf_to_ours,
    reference_transreid_to_ours,
)
from .heads import BNNeck
from .mbf import MBF
from .outputs import MBFOutput
from .recovery import RecoveryDecoder
from .registry import ARCHITECTURES, BACKBONES, Architecture
from .separator import ForegroundSeparator, PatchClassifier
from .steps import GlobalStep, MBFStep, StepOutput
from .vit import VIT_SPECS, BackboneSpec, VisionTransformerReID, backbone_spec, feature_grid

__all__ = [
    "build_model", "build_model_from_checkpoint", "build_backbone", "build_step", "architecture",
    "ARCHITECTURES", "BACKBONES", "Architecture", "MBF", "MBFOutput", "TransReIDBaseline", "VisionTransformerReID",
    "MBFStep", "GlobalStep", "StepOutput",
    "VIT_SPECS", "BackboneSpec", "backbone_spec", "feature_grid", "ForegroundSeparator", "PatchClassifier",
    "RecoveryDecoder", "BNNeck", "read_state_dict", "load_strict", "imagenet_to_backbone",
    "reference_mbf_to_ours", "reference_transreid_to_ours",
]
