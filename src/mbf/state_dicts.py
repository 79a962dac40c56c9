"""Reading torch files safely, and comparing a checkpoint's tensors with a module's; shared by
the model, parser and run-folder loaders."""
from __future__ import annotations

import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from .errors import CheckpointError, UnsafeCheckpointError


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


def fit_problems(own: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor],
                 may_miss: Callable[[str], bool] = lambda key: False, limit: int = 12) -> list[str]:
    """One phrase per way ``state`` does not fit a module's ``own`` tensors, naming the keys (the
    first ``limit`` of each kind): missing, unexpected, shape mismatch (checkpoint vs model)."""
    missing, unexpected, mismatched = key_differences(own, state, may_miss)

    def names(keys: list[str], sep: str = ", ") -> str:
        return sep.join(keys[:limit]) + (f" ... and {len(keys) - limit} more" if len(keys) > limit else "")

    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in mismatched]
    return [f"{kind} ({len(keys)}): {names(keys, sep)}" for kind, keys, sep in
            (("missing keys", sorted(missing), ", "), ("unexpected keys", sorted(unexpected), ", "),
             ("shape mismatch", shapes, "; ")) if keys]


# ------------------------------------------------------------------ reading torch files
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since PyTorch 1.6
_PICKLE_MAGIC = b"\x80"  # the legacy format (and bare pickles) start with a protocol marker
_REFUSED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)|safe_globals\(\[([\w.]+)\]\)")


def load_torch_file(path: str | os.PathLike, what: str = "checkpoint") -> Any:
    """The content of a ``torch.save`` file, read with the weights-only loader and nothing else.

    Tensors, containers and plain values load; a file that needs any other Python object is
    refused with :class:`~mbf.errors.UnsafeCheckpointError` (its ``needs``: the object the file
    asked for) and never unpickled. Missing files, folders, ONNX exports and damaged files each
    give one :class:`~mbf.errors.CheckpointError` naming ``what`` and the path.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{what} {path} is a folder, expected a file")
    if not path.is_file():
        raise CheckpointError(f"{what} not found: {path}")
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise CheckpointError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if path.suffix.lower() == ".onnx" or not (head.startswith(_ZIP_MAGIC) or head.startswith(_PICKLE_MAGIC)):
        kind = "an ONNX export" if path.suffix.lower() == ".onnx" else "not a file written by torch.save"
        raise CheckpointError(f"cannot read {what} {path}: it is {kind}; a PyTorch checkpoint (.pth) is expected "
                              "here (ONNX files are read by mbf extract / mbf search --weights and Embedder.load)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the weights-only unpickler's notes on pickle protocols
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        match = _REFUSED_GLOBAL.search(str(exc))
        needs = next(g for g in match.groups() if g) if match else None
        found = f"it needs {needs}" if needs else "it holds pickle instructions"
        error = UnsafeCheckpointError(f"{what} {path} was not loaded: {found}, and only tensors and plain values "
                                      "are read from files (anything else could run code)")
        error.needs = needs
        raise error from None
    except Exception as exc:  # a damaged zip, a truncated legacy file... torch raises many types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"cannot read {what} {path}: {type(exc).__name__}: {first}") from None
