"""Random draws that honour an optional ``torch.Generator`` living on any device.

A generator can only draw on its own device; the draws are made there and moved to the
device of the data, so a CPU generator also drives augmentations of CUDA batches.
"""
from __future__ import annotations

import torch


def _device_for(generator: torch.Generator | None, device: torch.device) -> torch.device:
    return device if generator is None else generator.device


def rand(shape, generator: torch.Generator | None, device: torch.device, dtype=torch.float32) -> torch.Tensor:
    out = torch.rand(shape, generator=generator, device=_device_for(generator, device), dtype=dtype)
    return out.to(device)


def randn(shape, generator: torch.Generator | None, device: torch.device, dtype=torch.float32) -> torch.Tensor:
    out = torch.randn(shape, generator=generator, device=_device_for(generator, device), dtype=dtype)
    return out.to(device)


def randint(high: int, shape, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    out = torch.randint(0, high, shape, generator=generator, device=_device_for(generator, device))
    return out.to(device)
