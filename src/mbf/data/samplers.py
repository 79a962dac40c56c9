"""Identity-balanced sampling: every batch holds P identities x K images each.

The triplet loss needs positives in the batch, so an epoch is built from chunks of K
images of one identity (identities with fewer than K images are sampled with
replacement), and batches take P random identities that still have chunks.

Unlike the reference, the order is a pure function of ``(seed, epoch)``: the samplers draw
from their own NumPy generator, so runs repeat exactly, a resumed run sees the same batches,
and every process of a distributed run builds the same global list without communication
and takes its own share of each global batch.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
from torch.utils.data import Sampler

from ..errors import ConfigError


def _check(batch_size: int, num_instances: int, world_size: int = 1) -> None:
    if num_instances <= 0 or batch_size <= 0:
        raise ConfigError(
            f"SOLVER.IMS_PER_BATCH ({batch_size}) and DATALOADER.NUM_INSTANCE ({num_instances}) must be positive"
        )
    if batch_size % (num_instances * world_size):
        raise ConfigError(
            f"SOLVER.IMS_PER_BATCH ({batch_size}) must be a multiple of DATALOADER.NUM_INSTANCE ({num_instances})"
            + (f" times the number of processes ({world_size})" if world_size > 1 else "")
        )


class RandomIdentitySampler(Sampler):
    """Indices of ``pids`` (one per dataset item) in batches of P identities x ``num_instances``."""

    def __init__(self, pids, batch_size: int, num_instances: int, seed: int = 0):
        _check(batch_size, num_instances)
        self.batch_size = batch_size
        self.num_instances = num_instances
        self.num_pids_per_batch = batch_size // num_instances
        self.seed = seed
        self.epoch = 0
        index = defaultdict(list)
        for i, pid in enumerate(pids):
            index[int(pid)].append(i)
        self.index = {pid: np.asarray(idx) for pid, idx in sorted(index.items())}
        if len(self.index) < self.num_pids_per_batch:
            raise ConfigError(
                f"a batch needs {self.num_pids_per_batch} identities (SOLVER.IMS_PER_BATCH / DATALOADER.NUM_INSTANCE) "
                f"but the training set has only {len(self.index)}"
            )
        self._cached: tuple[int, list[int]] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order ``__iter__`` produces (call before every epoch)."""
        self.epoch = int(epoch)

    def global_order(self) -> list[int]:
        """The whole epoch's indices, batch after batch (a multiple of the batch size)."""
        if self._cached is None or self._cached[0] != self.epoch:
            self._cached = (self.epoch, self._draw())
        return self._cached[1]

    def _draw(self) -> list[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        k = self.num_instances
        chunks = {}
        for pid, idx in self.index.items():
            if len(idx) < k:
                idx = rng.choice(idx, size=k, replace=True)
            idx = rng.permutation(idx)
            usable = len(idx) // k * k
            chunks[pid] = list(idx[:usable].reshape(-1, k))
        available = [pid for pid in self.index if chunks[pid]]
        order: list[int] = []
        while len(available) >= self.num_pids_per_batch:
            chosen = rng.choice(len(available), size=self.num_pids_per_batch, replace=False)
            picked = [available[i] for i in chosen]
            for pid in picked:
                order.extend(int(i) for i in chunks[pid].pop())
            available = [pid for pid in available if chunks[pid]]
        return order

    def __iter__(self):
        return iter(self.global_order())

    def __len__(self) -> int:
        return len(self.global_order())


class DistributedRandomIdentitySampler(RandomIdentitySampler):
    """The same global batches on every process; process ``rank`` takes its slice of each.

    SOLVER.IMS_PER_BATCH stays the global batch: each of ``world_size`` processes gets
    ``batch_size / world_size`` images, whole identities' chunks, never shared with another.
    """

    def __init__(self, pids, batch_size: int, num_instances: int, rank: int, world_size: int, seed: int = 0):
        _check(batch_size, num_instances, world_size)
        super().__init__(pids, batch_size, num_instances, seed)
        self.rank = rank
        self.world_size = world_size
        self.local_batch_size = batch_size // world_size

    def __iter__(self):
        order = np.asarray(self.global_order(), dtype=np.int64)
        batches = order.reshape(-1, self.world_size, self.local_batch_size)
        return iter(batches[:, self.rank].reshape(-1).tolist())

    def __len__(self) -> int:
        return len(self.global_order()) // self.world_size
