"""The MBF network (ViT backbone, foreground separator, recovery decoder), the global-feature
baseline, their training steps, weight converters, the backbone contract, the architecture and
backbone registries and ``build_model``.

Backbone families (each one module that registers its MODEL.TRANSFORMER_TYPE keys; its import
below is its registration line): ImageNet ViT / DeiT (``vit``, registered in ``build``), CLIP
(``clip_vit``), DINOv2 (``dinov2``), LUPerson / TransReID-SSL (``luperson``).
"""

from .backbone import CAPABILITIES, ReIDBackbone, TokenSettings, capabilities_of, require_capabilities
from .baseline import TransReIDBaseline
from .build import architecture, build_backbone, build_model, build_model_from_checkpoint, build_step
from .converters import (
    WEIGHT_FORMATS,
    WeightFormat,
    detect_weight_format,
    imagenet_to_backbone,
    load_strict,
    read_state_dict,
    reference_mbf_to_ours,
    reference_transreid_to_ours,
    register_weight_format,
)
from .heads import BNNeck
from .mbf import MBF
from .outputs import MBFOutput
from .recovery import RecoveryDecoder
from .registry import ARCHITECTURES, BACKBONES, Architecture
from .separator import ForegroundSeparator, PatchClassifier
from .steps import GlobalStep, MBFStep, StepOutput
from .vit import VIT_SPECS, BackboneSpec, VisionTransformerReID, backbone_spec, feature_grid

from . import clip_vit  # noqa: F401 (registration: CLIP)
from . import dinov2  # noqa: F401 (registration: DINOv2)
from . import luperson  # noqa: F401 (registration: LUPerson / TransReID-SSL)

__all__ = [
    "build_model", "build_model_from_checkpoint", "build_backbone", "build_step", "architecture",
    "ARCHITECTURES", "BACKBONES", "Architecture", "MBF", "MBFOutput", "TransReIDBaseline", "VisionTransformerReID",
    "MBFStep", "GlobalStep", "StepOutput",
    "VIT_SPECS", "BackboneSpec", "backbone_spec", "feature_grid", "ForegroundSeparator", "PatchClassifier",
    "RecoveryDecoder", "BNNeck", "read_state_dict", "load_strict", "imagenet_to_backbone",
    "reference_mbf_to_ours", "reference_transreid_to_ours",
    "CAPABILITIES", "ReIDBackbone", "TokenSettings", "capabilities_of", "require_capabilities",
    "WEIGHT_FORMATS", "WeightFormat", "detect_weight_format", "register_weight_format",
]
