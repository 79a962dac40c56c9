"""Numeric precision of training and inference: float32 or autocast, on CUDA or the CPU.

On CUDA, ``SOLVER.AMP`` trains under float16 autocast with a gradient scaler (the default,
as the reference does) or under bfloat16 autocast (``SOLVER.AMP_DTYPE bfloat16``, no scaler
needed). The CPU trains in float32 unless bfloat16 is asked for explicitly: CPU bfloat16
autocast is there so that the mixed-precision code paths run on machines without a GPU
(CI); it says nothing about CUDA float16 numerics or speed.

Inference autocast (``TEST.AMP``) is off by default; when on, it uses ``TEST.AMP_DTYPE`` on
CUDA and bfloat16 on the CPU (float16 on the CPU is refused).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from .errors import ConfigError, InputError

AMP_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class Precision:
    """``dtype`` None means float32 (no autocast)."""

    device_type: str
    dtype: torch.dtype | None = None

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    @property
    def needs_scaler(self) -> bool:
        """float16 gradients underflow without loss scaling; bfloat16 has float32's range."""
        return self.device_type == "cuda" and self.dtype == torch.float16

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        return torch.amp.GradScaler("cuda", enabled=self.needs_scaler)

    @property
    def name(self) -> str:
        return "float32" if self.dtype is None else str(self.dtype).replace("torch.", "")

    def describe(self) -> str:
        if self.dtype is None:
            return "float32"
        scaler = " with gradient scaling" if self.needs_scaler else ""
        return f"{self.name} autocast on {self.device_type}{scaler}"


def _dtype(name: str, key: str) -> torch.dtype:
    if name not in AMP_DTYPES:
        raise ConfigError(f"{key} must be one of {', '.join(AMP_DTYPES)}, got {name!r}")
    return AMP_DTYPES[name]


def training_precision(amp: bool, dtype_name: str, device: torch.device) -> Precision:
    """SOLVER.AMP / SOLVER.AMP_DTYPE on ``device``. The CPU keeps float32 for the default
    float16 (CPU float16 autocast is neither fast nor what a GPU run does) and uses bfloat16
    autocast only when SOLVER.AMP_DTYPE asks for it."""
    dtype = _dtype(dtype_name, "SOLVER.AMP_DTYPE")
    if not amp:
        return Precision(device.type)
    if device.type == "cuda" or dtype == torch.bfloat16:
        return Precision(device.type, dtype)
    return Precision(device.type)


def inference_precision(amp: bool, dtype_name: str, device: torch.device) -> Precision:
    """TEST.AMP / TEST.AMP_DTYPE on ``device``."""
    dtype = _dtype(dtype_name, "TEST.AMP_DTYPE")
    if not amp:
        return Precision(device.type)
    if device.type != "cuda" and dtype != torch.bfloat16:
        raise ConfigError(f"TEST.AMP_DTYPE {dtype_name!r} is not available on the {device.type}; use bfloat16 "
                          "(or TEST.AMP False)")
    return Precision(device.type, dtype)


def named_precision(name: str, device) -> Precision:
    """Inference precision by name ('float32', 'bfloat16', or 'float16' on CUDA), for the API
    (``Embedder(precision=...)``): the same rules as TEST.AMP_DTYPE, InputError otherwise."""
    device = torch.device(device)
    if name == "float32":
        return Precision(device.type)
    if name not in AMP_DTYPES:
        raise InputError(f"precision must be one of float32, {', '.join(AMP_DTYPES)}, got {name!r}")
    if device.type != "cuda" and name != "bfloat16":
        raise InputError(f"{name} autocast is not available on the {device.type}; use bfloat16 (or float32)")
    return Precision(device.type, AMP_DTYPES[name])
