"""Configuration: yacs defaults with the seed's key names, plus safe loading helpers."""

from .defaults import _C
from .loading import get_cfg, load_config

__all__ = ["get_cfg", "load_config"]
