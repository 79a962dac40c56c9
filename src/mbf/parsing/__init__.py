"""Human parsing teacher and the part-label pipeline (docs/METHOD.md, section 3).

parser (HRNet) -> pixel classes -> post-processing and label merge -> part labels 0..4
-> patch labels (most frequent per patch window) -> refinement (salient patches, erased
and covered patches). Labels can also come from label files or from the parse cache.
"""
from .cache import CacheMasks, ParseCache, ParserSettings, parse_images
from .hrnet import HRNet, build_hrnet
from .labels import BACKGROUND, HEAD, LOWER, NUM_PARTS, PART_NAMES, SHOES, UPPER
from .mask_ops import drop_covered, erase_patches, keep_salient, patch_labels
from .masks import FolderMasks, read_label_png
from .parser import HumanParser, load_parser_weights
from .postprocess import postprocess, postprocess_reference
from .sources import MASK_SOURCES, PartLabels, build_mask_dir, build_mask_loader, build_part_labels

__all__ = [
    "BACKGROUND", "HEAD", "UPPER", "LOWER", "SHOES", "NUM_PARTS", "PART_NAMES",
    "HRNet", "HumanParser", "build_hrnet", "load_parser_weights",
    "postprocess", "postprocess_reference",
    "patch_labels", "erase_patches", "drop_covered", "keep_salient",
    "MASK_SOURCES", "PartLabels", "build_part_labels", "build_mask_loader", "build_mask_dir",
    "read_label_png",
    "FolderMasks",
    "ParseCache", "ParserSettings", "CacheMasks", "parse_images",
]
