"""Human parsing teacher and the part-label pipeline (METHOD.md section 3).

parser (HRNet) -> pixel classes -> post-processing and label merge -> part labels 0..4
-> patch labels (most frequent per patch window) -> refinement (salient patches, erased
and covered patches). Labels can also come from files or from the parse cache.
"""
from .cache import ParseCache, parse_images
from .hrnet import HRNet, build_hrnet
from .labels import BACKGROUND, HEAD, LOWER, NUM_PARTS, PART_NAMES, SHOES, UPPER
from .mask_ops import drop_covered, erase_patches, keep_salient, patch_labels
from .masks import build_mask_loader, read_label_png
from .parser import HumanParser, load_parser_weights
from .postprocess import postprocess, postprocess_reference

__all__ = [
    "BACKGROUND", "HEAD", "UPPER", "LOWER", "SHOES", "NUM_PARTS", "PART_NAMES",
    "HRNet", "HumanParser", "ParseCache", "build_hrnet", "build_mask_loader", "drop_covered", "erase_patches",
    "keep_salient", "load_parser_weights", "parse_images", "patch_labels", "postprocess", "postprocess_reference",
    "read_label_png",
]
