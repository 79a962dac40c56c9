"""The architectures (``MODEL.NAME``) and backbones (``MODEL.TRANSFORMER_TYPE``) by name.

An :class:`Architecture` says how to build its network from the config on a backbone, how to
build its training step, and how to read the reference implementation's checkpoints. A
backbone builder makes the feature extractor from the config. Both registries are open:
code outside the package registers a new entry and selects it by its config value (see
docs/ARCHITECTURE.md for the recipes, and :mod:`mbf.modeling.backbone` for the contract a backbone keeps).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from ..registry import Registry

BACKBONES = Registry("backbone", key="MODEL.TRANSFORMER_TYPE")
ARCHITECTURES = Registry("architecture", key="MODEL.NAME")


@dataclass(frozen=True)
class Architecture:
    """One re-ID architecture.

    build: ``(cfg, backbone, num_classes) -> model``.
    step: ``(cfg, model, criterion, parser) -> step module``; ``parser`` is the online mask
        source's teacher or None (labels come with the batch, or none are needed).
    from_reference: the reference implementation's state dict -> ours.
    part_labels: whether its training step needs part labels (a mask source).
    salient: whether its backbone selects salient patches (MODEL.SALIENT_BLOCK).
    needs: the backbone capabilities it uses (:data:`mbf.modeling.backbone.CAPABILITIES`); a
        backbone without one of them is a ConfigError naming MODEL.TRANSFORMER_TYPE and it.
    """

    build: Callable[..., nn.Module]
    step: Callable[..., nn.Module]
    from_reference: Callable[[dict], dict]
    part_labels: bool = False
    salient: bool = False
    needs: tuple[str, ...] = ()
