"""Which keys differ between two configurations (or any nested mappings), by dotted name."""
from __future__ import annotations

from typing import Any, Mapping

import yaml


def flatten(mapping: Mapping, prefix: str = "") -> dict[str, Any]:
    """``{"A": {"B": 1}}`` -> ``{"A.B": 1}``; tuples become lists so YAML round trips compare equal."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = list(value) if isinstance(value, tuple) else value
    return flat


def differences(old: Mapping, new: Mapping, missing_differs: bool = False) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (old, new)}`` for every leaf whose value differs.

    A key only one side has is a difference when ``missing_differs`` (its absent value shown as
    None); otherwise it is ignored, as for a config saved by another version of this package.
    """
    a, b = flatten(old), flatten(new)
    keys = sorted(a.keys() | b.keys()) if missing_differs else sorted(a.keys() & b.keys())
    return {k: (a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k) or (k in a) != (k in b)}


def config_mapping(cfg) -> dict[str, Any]:
    """A yacs config as the flat mapping its dump reads back to (what config.yaml holds)."""
    return flatten(yaml.safe_load(cfg.dump()))
