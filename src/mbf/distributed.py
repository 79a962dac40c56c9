"""torch.distributed set-up for torchrun (NCCL on GPUs, gloo on the CPU)."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    group: bool = False  # a process group was joined (also by a one-process torchrun run)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1 or self.group


def init_distributed(device_type: str, single: bool = False) -> DistInfo:
    """Join the process group that torchrun describes through its environment variables.

    Without ``WORLD_SIZE`` in the environment (a plain ``python train.py``) this is a
    single-process run. ``single`` joins a group of one too (torchrun --nproc_per_node 1 with
    MODEL.DIST_TRAIN), so the NCCL / DDP path can be checked on one GPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1 and not (single and "RANK" in os.environ):
        return DistInfo()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://")
    log.info("distributed: rank %d of %d (local %d, %s)", rank, world_size, local_rank, backend)
    return DistInfo(rank, world_size, local_rank, group=True)


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
