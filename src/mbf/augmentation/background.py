"""Background augmentation (docs/METHOD.md, section 4): occlude each image with content of another
identity's image, and report which patches of the grid are now covered.

Two kinds of occluder, chosen per image (probability ``beta`` for the first):

* person: the other image's parsed person (pixels whose label is > 0) moved half an image to
  the left, to the right or down; pixels that leave the frame are dropped. The covered patches
  are the other image's patch-label mask (> 0) moved by half the patch grid (``fW // 2`` or
  ``fH // 2``) the same way.
* region: one random ``patch_size`` window of the patch grid (at the model's stride) of the
  other image, resized bilinearly to half the image, over the left, right, bottom or top half.
  Covered patches: grid columns ``[:fW//2]`` / ``[fW//2:]`` or rows ``[fH//2:]`` / ``[:fH//2]``.

Where this differs from the reference, on purpose:

* the reference writes the covered indices into a zero-padded list, so patch 0 is always
  reported covered, and it truncates the list at ``max(fH//2*fW, fH*(fW//2)) + fW`` entries;
  here ``covered`` is exactly the shifted patch mask (or the half), nothing more or less;
* the reference resizes the window through PIL (``ToPILImage`` / ``Resize`` / ``ToTensor``),
  which maps the *normalised* values through ``x * 255 -> uint8`` (wrapping negatives and
  values above 1) and back to [0, 1]; here the window is resized with ``F.interpolate``
  (bilinear, ``align_corners=False``, PIL's sampling grid when enlarging) and keeps the
  normalised values, so the occluder has the statistics of a real image region;
* halves of odd-sized images get their exact size (the reference fails on odd sizes).

Everything runs on whole batches with gathers and masks; the only Python loop is over the four
region placements.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError, InputError
from ..geometry import PATCH_SIZE, feature_grid
from ._sampling import rand, randint


def _pair(value) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise InputError(f"stride must be an int or a pair, got {value!r}")
        return int(value[0]), int(value[1])
    return int(value), int(value)


def pick_other_identity(pids: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """For each image, the index of a uniformly chosen image of a different identity.

    Works for any batch layout (P identities x K instances or unbalanced); raises
    :class:`InputError` when some image has no image of another identity in the batch.
    """
    if pids.dim() != 1:
        raise InputError(f"pick_other_identity expects pids [B], got {tuple(pids.shape)}")
    different = pids.unsqueeze(0) != pids.unsqueeze(1)  # [B, B]
    if not bool(different.any(dim=1).all()):
        raise InputError("pick_other_identity needs at least two identities in the batch")
    # i.i.d. uniform scores, arg-max over the allowed columns -> a uniform choice among them
    scores = rand(different.shape, generator, pids.device).masked_fill(~different, -1.0)
    return scores.argmax(dim=1)


def _shift(mask: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, values: torch.Tensor | None = None):
    """Move ``mask`` [B, H, W] (and ``values`` [B, C, H, W]) by (dy[b], dx[b]) per image.

    Returns ``(moved_mask, moved_values)``; positions whose source lies outside the frame are
    False in the mask (their values are arbitrary), so content leaving the frame is dropped.
    """
    B, H, W = mask.shape
    dev = mask.device
    src_y = torch.arange(H, device=dev).unsqueeze(0) - dy.unsqueeze(1)  # [B, H]
    src_x = torch.arange(W, device=dev).unsqueeze(0) - dx.unsqueeze(1)  # [B, W]
    inside = ((src_y >= 0) & (src_y < H)).unsqueeze(2) & ((src_x >= 0) & (src_x < W)).unsqueeze(1)
    flat = (src_y.clamp(0, H - 1).unsqueeze(2) * W + src_x.clamp(0, W - 1).unsqueeze(1)).flatten(1)  # [B, H*W]
    moved_mask = mask.flatten(1).gather(1, flat).view(B, H, W) & inside
    moved_values = None
    if values is not None:
        C = values.shape[1]
        moved_values = values.flatten(2).gather(2, flat.unsqueeze(1).expand(B, C, H * W)).view(B, C, H, W)
    return moved_mask, moved_values


def background_augmentation(
    img: torch.Tensor,
    other_img: torch.Tensor,
    other_pixel_mask: torch.Tensor,
    other_patch_mask: torch.Tensor,
    beta: float,
    stride,
    patch_size: int = PATCH_SIZE,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Occlude ``img`` with content of ``other_img`` (row b of each belongs together).

    Args:
        img, other_img: float [B, C, H, W] (normalised); ``img`` is not modified.
        other_pixel_mask: [B, H, W] part labels of ``other_img`` (> 0 is the person).
        other_patch_mask: [B, fH, fW] patch labels of ``other_img`` (> 0 is the person).
        beta: probability of the person occluder (``MODEL.BETA``), else a region occluder.
        stride: patch-grid stride, an int or (sH, sW) (the grid: :class:`mbf.geometry.PatchGrid`).
        patch_size: side of a patch window.
        generator: optional ``torch.Generator`` (any device) for reproducible draws.

    Returns:
        ``(augmented, covered)``: the occluded batch and bool [B, fH * fW], the patches
        (row-major) the occluder covers.
    """
    if img.dim() != 4 or other_img.shape != img.shape:
        raise InputError(
            f"background_augmentation expects img and other_img of one shape [B, C, H, W], "
            f"got {tuple(img.shape)} and {tuple(other_img.shape)}"
        )
    if not 0.0 <= beta <= 1.0:
        raise InputError(f"background_augmentation: beta must be in [0, 1], got {beta}")
    B, C, H, W = img.shape
    sH, sW = _pair(stride)
    try:
        fH, fW = feature_grid((H, W), (sH, sW), patch_size)
    except ConfigError as exc:  # an impossible grid here is a caller's error, not a config's
        raise InputError(f"background_augmentation: {exc}") from None
    if other_pixel_mask.shape != (B, H, W):
        raise InputError(f"other_pixel_mask must be [B, H, W] = {(B, H, W)}, got {tuple(other_pixel_mask.shape)}")
    if other_patch_mask.shape != (B, fH, fW):
        raise InputError(
            f"other_patch_mask must be [B, fH, fW] = {(B, fH, fW)} for stride {(sH, sW)} and patch "
            f"{patch_size}, got {tuple(other_patch_mask.shape)}"
        )
    dev = img.device
    other_img = other_img.to(img.dtype)

    # every draw is made for every image, so the generator advances the same way each call
    use_person = rand((B,), generator, dev) < beta
    person_loc = randint(3, (B,), generator, dev)  # 0 left, 1 right, 2 down
    region_loc = randint(4, (B,), generator, dev)  # 0 left, 1 right, 2 bottom, 3 top
    window = randint(fH * fW, (B,), generator, dev)

    # ---- person occluder: one shifted, masked copy per image
    zero = torch.zeros((), dtype=torch.long, device=dev)
    shift_y = torch.stack((zero, zero, zero + H // 2))[person_loc]
    shift_x = torch.stack((zero - W // 2, zero + W // 2, zero))[person_loc]
    person_px, person_values = _shift(other_pixel_mask > 0, shift_y, shift_x, other_img)
    patch_y = torch.stack((zero, zero, zero + fH // 2))[person_loc]
    patch_x = torch.stack((zero - fW // 2, zero + fW // 2, zero))[person_loc]
    person_cov, _ = _shift(other_patch_mask > 0, patch_y, patch_x)

    out = torch.where((person_px & use_person[:, None, None]).unsqueeze(1), person_values, img)  # a new tensor

    # ---- region occluder: a window of the other image enlarged over half the frame
    wy, wx = window // fW, window % fW
    offs = torch.arange(patch_size, device=dev)
    rows = (wy * sH).unsqueeze(1) + offs  # [B, p]
    cols = (wx * sW).unsqueeze(1) + offs
    flat = (rows.unsqueeze(2) * W + cols.unsqueeze(1)).flatten(1)  # [B, p*p]
    crops = other_img.flatten(2).gather(2, flat.unsqueeze(1).expand(B, C, flat.shape[1]))
    crops = crops.view(B, C, patch_size, patch_size).float()

    halves = ((0, H, 0, W // 2), (0, H, W // 2, W), (H // 2, H, 0, W), (0, H // 2, 0, W))  # y0, y1, x0, x1
    gy = torch.arange(fH, device=dev).unsqueeze(1).expand(fH, fW)
    gx = torch.arange(fW, device=dev).unsqueeze(0).expand(fH, fW)
    half_patches = torch.stack((gx < fW // 2, gx >= fW // 2, gy >= fH // 2, gy < fH // 2)).flatten(1)  # [4, fH*fW]
    use_region = ~use_person
    enlarged: dict[tuple[int, int], torch.Tensor] = {}  # one resize per distinct half size
    for k, (y0, y1, x0, x1) in enumerate(halves):
        size = (y1 - y0, x1 - x0)
        if min(size) <= 0:
            continue
        if size not in enlarged:
            enlarged[size] = F.interpolate(crops, size=size, mode="bilinear", align_corners=False).to(img.dtype)
        sel = (use_region & (region_loc == k)).view(B, 1, 1, 1)
        out[:, :, y0:y1, x0:x1] = torch.where(sel, enlarged[size], out[:, :, y0:y1, x0:x1])

    covered = torch.where(use_person.unsqueeze(1), person_cov.flatten(1), half_patches[region_loc])
    return out, covered
