"""Configuration: yacs defaults with the seed's key names, plus safe loading helpers."""

from .checks import check_training
from .compare import config_mapping, differences, flatten
from .defaults import _C  # noqa: F401  (the defaults, for the config layer's own modules)
from .loading import get_cfg, load_config
from .switches import switch, switch_or_auto

__all__ = ["check_training", "config_mapping", "differences", "flatten", "get_cfg", "load_config", "switch", "switch_or_auto"]
