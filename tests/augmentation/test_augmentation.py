"""Batch augmentations: random erasing, other-identity choice, background augmentation."""
from __future__ import annotations

import math
import random

import pytest
import torch
import torch.nn.functional as F

from mbf.augmentation import background_augmentation, pick_other_identity, random_erasing
from mbf.errors import InputError


def gen(seed):
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------ random erasing
def test_random_erasing_is_deterministic_and_leaves_input_alone():
    img = torch.randn(6, 3, 32, 16, generator=gen(0))
    before = img.clone()
    a, ra = random_erasing(img, 0.5, generator=gen(1))
    b, rb = random_erasing(img, 0.5, generator=gen(1))
    c, rc = random_erasing(img, 0.5, generator=gen(2))
    assert torch.equal(a, b) and torch.equal(ra, rb)
    assert not (torch.equal(a, c) and torch.equal(ra, rc))
    assert torch.equal(img, before)
    assert ra.dtype == torch.int64 and ra.shape == (6, 4)


def test_random_erasing_rect_is_exactly_the_changed_pixels():
    img = torch.randn(40, 3, 32, 16, generator=gen(3))
    out, rects = random_erasing(img, 0.6, generator=gen(4))
    erased = rects[:, 0] >= 0
    assert 0 < int(erased.sum()) < 40
    for b in range(40):
        changed = (out[b] != img[b]).any(0)
        if not erased[b]:
            assert torch.equal(rects[b], torch.full((4,), -1)) and not changed.any()
            continue
        top, left, h, w = rects[b].tolist()
        assert h > 0 and w > 0 and top + h <= 32 and left + w <= 16
        expected = torch.zeros(32, 16, dtype=torch.bool)
        expected[top:top + h, left:left + w] = True
        assert torch.equal(changed, expected)


def reference_draws(n, H, W, seed, sl=0.02, sh=1 / 3, r1=0.3):
    """The reference's scalar sampling (one attempt): accepted (h, w) pairs and the accept rate."""
    rng = random.Random(seed)
    accepted = []
    for _ in range(n):
        area = rng.uniform(sl, sh) * H * W
        aspect = math.exp(rng.uniform(math.log(r1), -math.log(r1)))
        h, w = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
        if h < H and w < W:
            accepted.append((h, w))
    return torch.tensor(accepted, dtype=torch.float64), len(accepted) / n


def test_random_erasing_statistics():
    B, H, W = 2000, 128, 64
    img = torch.zeros(B, 1, H, W)
    out, rects = random_erasing(img, 0.4, generator=gen(5))
    erased = rects[:, 0] >= 0
    assert abs(erased.float().mean().item() - 0.4) < 0.04
    top, left, h, w = rects[erased].double().unbind(1)
    ref, accept_rate = reference_draws(40000, H, W, seed=0)
    ref_area = ref[:, 0] * ref[:, 1] / (H * W)
    ref_log_aspect = torch.log(ref[:, 0] / ref[:, 1])
    area = h * w / (H * W)
    log_aspect = torch.log(h / w)
    n = len(area)
    # accepted rectangles follow the reference's distribution (means within ~4 standard errors)
    assert abs(area.mean() - ref_area.mean()) < 4 * ref_area.std() / math.sqrt(n)
    assert abs(log_aspect.mean() - ref_log_aspect.mean()) < 4 * ref_log_aspect.std() / math.sqrt(n)
    assert abs(area.std() - ref_area.std()) < 0.1 * ref_area.std()
    assert area.min() >= ref_area.min() - 1e-3 and area.max() <= ref_area.max() + 1e-3
    assert log_aspect.abs().max() <= -math.log(0.3) + 0.1
    # placement is uniform over the valid positions: the centre is on average the image centre
    assert abs((top + h / 2).mean().item() - H / 2) < 2.0
    assert abs((left + w / 2).mean().item() - W / 2) < 1.0
    # the fill is standard normal noise
    noise = out[out != 0]
    assert abs(noise.mean().item()) < 0.01 and abs(noise.std().item() - 1.0) < 0.01
    # one attempt, as the reference: erased with probability p * accept_rate
    _, once = random_erasing(img, 0.4, max_attempts=1, generator=gen(6))
    assert abs((once[:, 0] >= 0).float().mean().item() - 0.4 * accept_rate) < 0.035


def test_random_erasing_attempts():
    # on a square image many draws are too tall or too wide; more attempts rescue them
    img = torch.zeros(300, 1, 24, 24)
    _, one = random_erasing(img, 1.0, max_attempts=1, generator=gen(6))
    _, many = random_erasing(img, 1.0, max_attempts=100, generator=gen(6))
    assert (one[:, 0] < 0).any()
    assert (many[:, 0] >= 0).all()
    _, none = random_erasing(img, 0.0, generator=gen(6))
    assert (none == -1).all()
    with pytest.raises(InputError):
        random_erasing(img, 1.5)


# ------------------------------------------------------------------ other identity
@pytest.mark.parametrize("layout", [(2, 4), (4, 4), (3, 2), (8, 1), (5, 3)])
def test_pick_other_identity_any_layout(layout):
    P, K = layout
    pids = torch.arange(P).repeat_interleave(K) * 7 + 100
    pids = pids[torch.randperm(P * K, generator=gen(0))]
    for seed in range(20):
        idx = pick_other_identity(pids, generator=gen(seed))
        assert idx.shape == pids.shape and idx.dtype == torch.int64
        assert (pids[idx] != pids).all()
    assert torch.equal(pick_other_identity(pids, generator=gen(1)), pick_other_identity(pids, generator=gen(1)))


def test_pick_other_identity_is_uniform_and_unbalanced_batches_work():
    pids = torch.tensor([0, 0, 0, 1, 2, 2])
    counts = torch.zeros(6, 6)
    g = gen(9)
    for _ in range(600):
        idx = pick_other_identity(pids, generator=g)
        counts[torch.arange(6), idx] += 1
    same = pids[:, None] == pids[None]
    assert (counts[same] == 0).all()
    # image 0 has 3 candidates (~200 each), image 3 has 5 (~120 each)
    assert counts[0, 3:].min() > 150 and counts[0, 3:].max() < 250
    assert counts[3, [0, 1, 2, 4, 5]].min() > 80
    with pytest.raises(InputError):
        pick_other_identity(torch.zeros(4, dtype=torch.long))


# ------------------------------------------------------------------ background augmentation
def grid(H, W, stride, patch=16):
    return (H - patch) // stride + 1, (W - patch) // stride + 1


def person_oracle(img, other, pixel_mask, patch_mask, loc):
    """Loop-based reference of one person paste (loc 0 left, 1 right, 2 down)."""
    _, H, W = img.shape
    fH, fW = patch_mask.shape
    dy, dx = [(0, -(W // 2)), (0, W // 2), (H // 2, 0)][loc]
    pdy, pdx = [(0, -(fW // 2)), (0, fW // 2), (fH // 2, 0)][loc]
    out = img.clone()
    for y, x in (pixel_mask > 0).nonzero().tolist():
        if 0 <= y + dy < H and 0 <= x + dx < W:
            out[:, y + dy, x + dx] = other[:, y, x]
    covered = torch.zeros(fH, fW, dtype=torch.bool)
    for y, x in (patch_mask > 0).nonzero().tolist():
        if 0 <= y + pdy < fH and 0 <= x + pdx < fW:
            covered[y + pdy, x + pdx] = True
    return out, covered.flatten()


def random_person(B, H, W, fH, fW, seed):
    g = gen(seed)
    img = torch.randn(B, 3, H, W, generator=g)
    other = torch.randn(B, 3, H, W, generator=g)
    pixel = torch.zeros(B, H, W, dtype=torch.long)
    patch = torch.randint(0, 5, (B, fH, fW), generator=g) * (torch.rand(B, fH, fW, generator=g) < 0.5)
    for b in range(B):  # a blob of labels touching a random border region
        y0, x0 = int(torch.randint(0, H // 2, (1,), generator=g)), int(torch.randint(0, W // 2, (1,), generator=g))
        pixel[b, y0:y0 + H // 2, x0:x0 + W // 2] = torch.randint(1, 5, (1,), generator=g)
    pixel[0, :, 0] = 3  # a column on the left edge: shifted left it must vanish, not wrap
    return img, other, pixel, patch


@pytest.mark.parametrize("shape,stride", [((64, 32), 16), ((64, 32), (11, 11)), ((63, 33), 11)])
def test_person_paste_matches_loop_oracle(shape, stride):
    H, W = shape
    s = stride if isinstance(stride, int) else stride[0]
    fH, fW = grid(H, W, s)
    B = 24
    img, other, pixel, patch = random_person(B, H, W, fH, fW, seed=11)
    out, covered = background_augmentation(img, other, pixel, patch, beta=1.0, stride=stride, generator=gen(12))
    assert covered.shape == (B, fH * fW) and covered.dtype == torch.bool
    seen = set()
    for b in range(B):
        matches = []
        for loc in range(3):
            exp_img, exp_cov = person_oracle(img[b], other[b], pixel[b], patch[b], loc)
            if torch.equal(out[b], exp_img) and torch.equal(covered[b], exp_cov):
                matches.append(loc)
        assert matches, f"image {b} matches no shift"
        seen.update(matches)
    assert seen == {0, 1, 2}


def test_person_paste_by_hand():
    H, W = 64, 32  # stride 16 -> 4 x 2 patch grid
    img = torch.zeros(1, 1, H, W)
    other = torch.full((1, 1, H, W), 5.0)
    pixel = torch.zeros(1, H, W, dtype=torch.long)
    pixel[0, 10:20, 20:30] = 2  # a block in the right half
    pixel[0, 40:50, 0:4] = 1  # a block on the left edge
    patch = torch.zeros(1, 4, 2, dtype=torch.long)
    patch[0, 0, 1] = 2
    patch[0, 3, 0] = 1
    results = {}
    for seed in range(40):
        out, cov = background_augmentation(img, other, pixel, patch, 1.0, 16, generator=gen(seed))
        key = tuple(cov[0].tolist())
        results[key] = out[0, 0]
    def cells(*idx):
        return tuple(i in idx for i in range(8))

    # left: the right block moves to columns 4..13, the edge block leaves the frame (no wrap)
    left = cells(0)  # patch (0,1) -> (0,0); (3,0) leaves the grid
    exp = torch.zeros(H, W)
    exp[10:20, 4:14] = 5
    assert torch.equal(results[left], exp)
    # right: the right block leaves, the edge block moves to columns 16..19
    right = cells(7)  # (3,0) -> (3,1); (0,1) leaves
    exp = torch.zeros(H, W)
    exp[40:50, 16:20] = 5
    assert torch.equal(results[right], exp)
    # down: the upper block moves to rows 42..51, the lower block leaves
    down = cells(5)  # (0,1) -> (2,1); (3,0) leaves
    exp = torch.zeros(H, W)
    exp[42:52, 20:30] = 5
    assert torch.equal(results[down], exp)
    assert len(results) == 3


def test_region_occlusion_covers_exactly_one_half():
    H, W, s = 64, 32, 16
    fH, fW = grid(H, W, s)
    B = 40
    img = torch.zeros(B, 3, H, W)
    other = torch.rand(B, 3, H, W, generator=gen(20)) + 1.0  # never 0, so every pasted pixel shows
    pixel = torch.ones(B, H, W, dtype=torch.long)
    patch = torch.ones(B, fH, fW, dtype=torch.long)
    out, covered = background_augmentation(img, other, pixel, patch, beta=0.0, stride=s, generator=gen(21))
    halves = {
        "left": ((slice(None), slice(0, W // 2)), (slice(None), slice(0, fW // 2))),
        "right": ((slice(None), slice(W // 2, None)), (slice(None), slice(fW // 2, None))),
        "bottom": ((slice(H // 2, None), slice(None)), (slice(fH // 2, None), slice(None))),
        "top": ((slice(0, H // 2), slice(None)), (slice(0, fH // 2), slice(None))),
    }
    seen = set()
    for b in range(B):
        changed = (out[b] != 0).any(0)
        name = None
        for key, (px, pt) in halves.items():
            exp = torch.zeros(H, W, dtype=torch.bool)
            exp[px] = True
            if torch.equal(changed, exp):
                name = key
                exp_cov = torch.zeros(fH, fW, dtype=torch.bool)
                exp_cov[pt] = True
                assert torch.equal(covered[b], exp_cov.flatten()), key
        assert name is not None, f"image {b} is not covered on exactly one half"
        if name in ("right", "bottom"):
            assert not covered[b, 0]  # the reference would also report patch 0
        seen.add(name)
        # the content is a window of the other image at the stride, enlarged bilinearly
        y0, y1 = (H // 2, H) if name == "bottom" else (0, H // 2) if name == "top" else (0, H)
        x0, x1 = (W // 2, W) if name == "right" else (0, W // 2) if name == "left" else (0, W)
        region = out[b, :, y0:y1, x0:x1]
        found = False
        for wy in range(fH):
            for wx in range(fW):
                crop = other[b:b + 1, :, wy * s:wy * s + 16, wx * s:wx * s + 16]
                resized = F.interpolate(crop, size=(y1 - y0, x1 - x0), mode="bilinear", align_corners=False)[0]
                found |= torch.allclose(region, resized, atol=1e-6)
        assert found
    assert seen == {"left", "right", "bottom", "top"}


def test_region_occlusion_odd_size_and_overlapping_windows():
    H, W, s = 63, 33, 11
    fH, fW = grid(H, W, s)
    img = torch.zeros(16, 3, H, W)
    other = torch.rand(16, 3, H, W, generator=gen(30)) + 1.0
    out, covered = background_augmentation(
        img, other, torch.zeros(16, H, W, dtype=torch.long), torch.zeros(16, fH, fW, dtype=torch.long),
        beta=0.0, stride=s, generator=gen(31),
    )
    changed = (out != 0).any(1).flatten(1).sum(1)
    allowed = {H * (W // 2), H * (W - W // 2), (H // 2) * W, (H - H // 2) * W}
    assert set(changed.tolist()) <= allowed
    assert set(covered.sum(1).tolist()) <= {
        fH * (fW // 2), fH * (fW - fW // 2), (fH // 2) * fW, (fH - fH // 2) * fW
    }


def test_background_augmentation_determinism_and_mix():
    H, W, s = 64, 32, 16
    fH, fW = grid(H, W, s)
    img, other, pixel, patch = random_person(64, H, W, fH, fW, seed=40)
    before = img.clone()
    a = background_augmentation(img, other, pixel, patch, 0.5, s, generator=gen(41))
    b = background_augmentation(img, other, pixel, patch, 0.5, s, generator=gen(41))
    c = background_augmentation(img, other, pixel, patch, 0.5, s, generator=gen(42))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert torch.equal(img, before)
    # a region occluder changes a whole half: at least H*W/2 pixels; a person paste fewer here
    changed = (a[0] != img).any(1).flatten(1).sum(1)
    region = changed >= (H * W) // 2
    assert 0 < int(region.sum()) < 64
    with pytest.raises(InputError):
        background_augmentation(img, other, pixel, patch[:, :2], 0.5, s)
    with pytest.raises(InputError):
        background_augmentation(img, other, pixel, patch, 1.5, s)
    with pytest.raises(InputError, match="larger than the 16-pixel patch"):  # no grid: PatchGrid refuses it
        background_augmentation(img, other, pixel, patch, 0.5, 17)
