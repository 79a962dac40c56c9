"""Loading a YAML config and ``KEY VALUE`` overrides with errors that say what is wrong."""
from __future__ import annotations

import difflib
import os
from typing import Iterable, Sequence

import yaml
from yacs.config import CfgNode as CN

from ..errors import ConfigError
from .defaults import _C
from .hygiene import check_unused_keys


def get_cfg() -> CN:
    """A fresh, mutable copy of the default configuration."""
    return _C.clone()


def _all_keys(node: CN, prefix: str = "") -> list[str]:
    keys = []
    for name, value in node.items():
        full = f"{prefix}{name}"
        keys.append(full)
        if isinstance(value, CN):
            keys.extend(_all_keys(value, full + "."))
    return keys


def _unknown_key(full_key: str, where: str) -> ConfigError:
    candidates = _all_keys(_C)
    close = difflib.get_close_matches(full_key, candidates, n=3, cutoff=0.6)
    if not close:  # try the last component alone, e.g. a typo in a well-known leaf
        leaf = full_key.rsplit(".", 1)[-1]
        by_leaf = {k.rsplit(".", 1)[-1]: k for k in candidates}
        close = [by_leaf[m] for m in difflib.get_close_matches(leaf, list(by_leaf), n=3, cutoff=0.6)]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return ConfigError(f"unknown config key {full_key!r} in {where}{hint}")


def _leaf_keys(mapping: dict, prefix: str = "") -> set[str]:
    """``{"A": {"B": 1}}`` -> ``{"A.B"}``."""
    keys = set()
    for name, value in mapping.items():
        keys |= _leaf_keys(value, f"{prefix}{name}.") if isinstance(value, dict) else {f"{prefix}{name}"}
    return keys


def _default(node: CN, key: str):
    """The current value of dotted ``key`` (None when there is no such key)."""
    for part in key.split("."):
        if not isinstance(node, CN) or part not in node:
            return None
        node = node[part]
    return node


def _switch_spelling(default, value):
    """A boolean given for one of the seed's string switches ('yes' / 'no', 'on' / 'off', 'auto')
    in the switch's own spelling, so YAML's ``True`` and a command line's ``True`` are accepted
    where the seed writes 'yes'; any other value unchanged (yacs checks its type)."""
    if not isinstance(default, str):
        return value
    text = str(value).strip().lower() if isinstance(value, (bool, str)) else None
    if text not in ("true", "false"):
        return value
    on = text == "true"
    spelling = default.strip().lower()
    if spelling in ("yes", "no"):
        return "yes" if on else "no"
    if spelling in ("on", "off", "auto"):
        return "on" if on else "off"
    return value


def _spell_switches(mapping: dict, node: CN) -> None:
    """:func:`_switch_spelling` on every leaf of a config file's ``mapping``, in place."""
    for name, value in mapping.items():
        default = node.get(name) if isinstance(node, CN) else None
        if isinstance(value, dict):
            _spell_switches(value, default)
        else:
            mapping[name] = _switch_spelling(default, value)


def _check_mapping(mapping: dict, node: CN, prefix: str, where: str) -> None:
    for name, value in mapping.items():
        full = f"{prefix}{name}"
        if name not in node:
            if node.is_new_allowed():
                continue
            raise _unknown_key(full, where)
        if isinstance(node[name], CN):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {full!r} in {where} must be a mapping, got {value!r}")
            _check_mapping(value, node[name], full + ".", where)


def _check_opts(cfg: CN, opts: Sequence[str]) -> None:
    if len(opts) % 2:
        raise ConfigError(
            f"command-line overrides come in KEY VALUE pairs; got an odd number: {list(opts)}"
        )
    for full in opts[0::2]:
        node = cfg
        parts = full.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(node, CN) or part not in node:
                if isinstance(node, CN) and node.is_new_allowed() and depth == len(parts) - 1:
                    break
                raise _unknown_key(full, "the command line")
            node = node[part]


def _add_new_keys(cfg: CN, opts: list) -> list:
    """Set overrides of keys that do not exist yet under a section that allows new keys (e.g.
    MODEL.LOSS_WEIGHTS.<a registered term>; yacs's merge_from_list refuses them); return the rest."""
    _check_opts(cfg, opts)
    rest = []
    for key, value in zip(opts[0::2], opts[1::2]):
        *parents, leaf = key.split(".")
        node = cfg
        for part in parents:
            node = node[part]
        if leaf in node:
            rest += [key, value]
        else:
            node[leaf] = CN._decode_cfg_value(value)
    return rest


def load_config(config_file: str | os.PathLike | None = None, opts: Iterable[str] = (), freeze: bool = True) -> CN:
    """Defaults, merged with ``config_file`` (if any) and then with ``opts`` (KEY VALUE ...).

    Raises :class:`ConfigError` naming the file or key for a missing file, invalid YAML, an
    unknown key (with close matches suggested) or a value of the wrong type.
    """
    cfg = get_cfg()
    given: set[str] = set()  # the keys the user set, in the file or on the command line
    if config_file:
        path = os.fspath(config_file)
        if not os.path.isfile(path):
            raise ConfigError(f"config file not found: {path}")
        try:
            with open(path, encoding="utf-8") as fh:
                mapping = yaml.safe_load(fh) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(mapping, dict):
            raise ConfigError(f"config file {path} must hold a mapping of sections, got {type(mapping).__name__}")
        _check_mapping(mapping, cfg, "", path)
        _spell_switches(mapping, cfg)
        given |= _leaf_keys(mapping)
        try:
            cfg.merge_from_other_cfg(CN(mapping))
        except (KeyError, ValueError, AssertionError) as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
    opts = list(opts or [])
    given |= set(opts[0::2])
    opts = [_switch_spelling(_default(cfg, key), value) if i % 2 else value
            for i, (key, value) in enumerate(zip([k for k in opts[0::2] for _ in (0, 1)], opts))]
    opts = _add_new_keys(cfg, opts)
    try:
        cfg.merge_from_list(opts)
    except (KeyError, ValueError, AssertionError) as exc:
        raise ConfigError(f"command-line override: {exc}") from None
    cfg.MODEL.DEVICE_ID = str(cfg.MODEL.DEVICE_ID).strip("()'\" ")
    check_unused_keys(cfg, _C, given)
    if freeze:
        cfg.freeze()
    return cfg
