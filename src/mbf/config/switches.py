"""The seed's on/off keys, read one way everywhere.

TransReID's configs spell switches as strings ('yes' / 'no' for TEST.FEAT_NORM, 'on' / 'off'
for MODEL.IF_LABELSMOOTH), YAML turns ``True`` into a boolean, and a command line gives
'True'. :func:`switch` accepts every spelling, so 'yes', 'on', 'true', True and 1 mean the
same thing wherever the value is used; anything else is one ConfigError naming the key.
"""
from __future__ import annotations

from typing import Any

from ..errors import ConfigError

ON = ("yes", "on", "true", "1")
OFF = ("no", "off", "false", "0")


def switch(value: Any, key: str) -> bool:
    """``value`` of the on/off config key ``key`` as a bool."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ON:
        return True
    if text in OFF:
        return False
    raise ConfigError(f"{key} must be one of {', '.join(ON)} or {', '.join(OFF)} (or a YAML boolean), got {value!r}")


def switch_or_auto(value: Any, key: str) -> bool | None:
    """A switch that may also be 'auto' (None: the caller decides)."""
    if str(value).strip().lower() == "auto":
        return None
    try:
        return switch(value, key)
    except ConfigError:
        raise ConfigError(f"{key} must be 'auto' or a switch (yes / no, True / False), got {value!r}") from None
