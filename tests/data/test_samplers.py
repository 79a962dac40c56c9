from collections import Counter

import pytest

from mbf.data import DistributedRandomIdentitySampler, RandomIdentitySampler
from mbf.errors import ConfigError

# 12 identities with 1..9 images each
PIDS = [pid for pid in range(12) for _ in range(1 + (pid * 5) % 9)]


def batches(order, size):
    return [order[i:i + size] for i in range(0, len(order), size)]


def test_every_batch_has_p_identities_times_k_instances():
    sampler = RandomIdentitySampler(PIDS, batch_size=16, num_instances=4, seed=3)
    order = list(sampler)
    assert len(order) == len(sampler) and len(order) % 16 == 0 and order
    for batch in batches(order, 16):
        counts = Counter(PIDS[i] for i in batch)
        assert len(counts) == 4 and set(counts.values()) == {4}
        for pid_chunk in batches(batch, 4):  # chunks of one identity, contiguous
            assert len({PIDS[i] for i in pid_chunk}) == 1


def test_order_is_a_function_of_seed_and_epoch():
    a = RandomIdentitySampler(PIDS, 16, 4, seed=3)
    b = RandomIdentitySampler(PIDS, 16, 4, seed=3)
    assert list(a) == list(b)
    b.set_epoch(1)
    assert list(a) != list(b)
    a.set_epoch(1)
    assert list(a) == list(b)


def test_identities_with_few_images_are_sampled_with_replacement():
    # identity n has n + 1 images (1..6); with K = 4 each identity makes exactly one chunk
    pids = [pid for pid in range(6) for _ in range(pid + 1)]
    images = {pid: {i for i, p in enumerate(pids) if p == pid} for pid in range(6)}
    sampler = RandomIdentitySampler(pids, batch_size=8, num_instances=4, seed=0)
    drawn = {pid: set() for pid in range(6)}
    for epoch in range(10):
        sampler.set_epoch(epoch)
        order = list(sampler)
        assert len(order) == 24  # 6 chunks, 2 identities per batch: every identity is used
        # an identity with fewer than K images still fills all K slots of its chunk
        assert Counter(pids[i] for i in order) == {pid: 4 for pid in range(6)}
        for chunk in batches(order, 4):
            pid = pids[chunk[0]]
            assert set(chunk) <= images[pid]  # repeats are of its own images, never another identity's
            if len(images[pid]) < 4:
                assert len(set(chunk)) < 4  # drawn with replacement: images repeat
            else:
                assert len(set(chunk)) == 4  # enough images: drawn without replacement
            drawn[pid] |= set(chunk)
    # the draws with replacement reach every image of a small identity, not only the first
    assert all(drawn[pid] == images[pid] for pid in range(3))


def test_distributed_variant_splits_global_batches_without_overlap():
    world = 2
    parts = [list(DistributedRandomIdentitySampler(PIDS, 16, 4, rank=r, world_size=world, seed=5)) for r in range(world)]
    whole = list(RandomIdentitySampler(PIDS, 16, 4, seed=5))
    assert len(parts[0]) == len(parts[1]) == len(whole) // world
    for step, batch in enumerate(batches(whole, 16)):
        local = [parts[r][step * 8:(step + 1) * 8] for r in range(world)]
        assert local[0] + local[1] == batch  # the global batch, split in two
        assert not {PIDS[i] for i in local[0]} & {PIDS[i] for i in local[1]}


def test_batch_must_hold_whole_identity_chunks():
    with pytest.raises(ConfigError, match="multiple of DATALOADER.NUM_INSTANCE"):
        RandomIdentitySampler(PIDS, batch_size=10, num_instances=4)
    with pytest.raises(ConfigError, match="number of processes"):
        DistributedRandomIdentitySampler(PIDS, 16, 4, rank=0, world_size=3)
    with pytest.raises(ConfigError, match="only 2"):
        RandomIdentitySampler([0, 0, 1, 1], batch_size=12, num_instances=2)
