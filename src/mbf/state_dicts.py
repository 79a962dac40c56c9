"""Comparing a checkpoint's tensors with a module's, shared by the model and parser loaders."""
from __future__ import annotations

from typing import Callable, Mapping

import torch


def key_differences(own: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor],
                    may_miss: Callable[[str], bool] = lambda key: False) -> tuple[list, list, list]:
    """``(missing, unexpected, mismatched)`` key lists of ``state`` against the module's ``own``.

    ``may_miss(key)`` marks module keys a checkpoint may leave out; ``mismatched`` lists keys
    present on both sides with different shapes, in the module's order.
    """
    missing = [k for k in own if k not in state and not may_miss(k)]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in own if k in state and state[k].shape != own[k].shape]
    return missing, unexpected, mismatched
