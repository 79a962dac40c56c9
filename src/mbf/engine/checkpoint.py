"""Checkpoints that survive a crash (written through :mod:`mbf.files`) and are read safely."""
from __future__ import annotations

import os
from typing import Any

import torch

from ..files import atomic_write
from ..state_dicts import load_torch_file


class _RecordingWriter:
    """A file wrapper that keeps the OSError of a failed write: torch.save reports a failed
    write as its own RuntimeError ("file write failed"), which would hide a full disk."""

    def __init__(self, fh):
        self.fh, self.error = fh, None

    def write(self, data) -> int:
        try:
            return self.fh.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.fh.flush()


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` so that a reader never sees a half-written file; a failed write
    (a full disk) is one OutputError naming the file, and the previous file is kept."""
    with atomic_write(path, "wb") as fh:
        writer = _RecordingWriter(fh)
        try:
            torch.save(obj, writer)
        except RuntimeError:
            if writer.error is not None:
                raise writer.error from None
            raise


def load_file(path: str | os.PathLike, what: str = "checkpoint") -> Any:
    """A torch file read with the weights-only loader (see :func:`mbf.state_dicts.load_torch_file`)."""
    return load_torch_file(path, what)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare model inside DistributedDataParallel / DataParallel."""
    return getattr(model, "module", model)
