"""Configuration: yacs defaults with the seed's key names, plus safe loading helpers."""

from .checks import check_training
from .defaults import _C
from .loading import get_cfg, load_config

__all__ = ["check_training", "get_cfg", "load_config"]
