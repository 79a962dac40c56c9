"""Occluders in front of the target: objects, and the frame cutting the body off.

Objects mislead rather than only erase: cars, boxes, bushes and barriers carry the clothing
palette's colours (a car of a top's colour, a printed poster on a box, flowers in a bush), so
a feature that does not tell person from occluder picks up another identity's colours."""
from __future__ import annotations

import numpy as np

from .canvas import Canvas, _ellipse, _polygon, _smooth_noise, _taper
from .options import BACKGROUND
from .appearance import _PALETTE, _RGB
from .people import Pose


def _occlude(canvas: Canvas, kind: str, rng: np.random.Generator, pose: Pose) -> np.ndarray:
    """Draw one object occluder in front of the target (all its pixels become label 0); return its coverage."""
    h, w = canvas.lbl.shape
    Y, X = canvas.Y, canvas.X
    cover = np.zeros((h, w), bool)

    def paint(mask, colour):
        canvas.paint(mask, colour, BACKGROUND)
        cover[mask] = True

    if kind == "car":  # a parked car seen from the side, longer than the image is wide
        body = _RGB[rng.integers(len(_RGB))] + rng.uniform(-10, 10, 3).astype(np.float32)  # any clothing colour
        length = rng.uniform(2.2, 3.0) * w
        x0 = pose.centre_x - rng.uniform(0.15, 0.85) * length  # the car's rear end
        belt = h * rng.uniform(0.56, 0.72)  # top of the doors
        roof = belt - 0.14 * h
        c0, c1 = x0 + 0.22 * length, x0 + 0.72 * length  # cabin
        cabin = _polygon(Y, X, [(roof, c0 + 0.1 * length), (roof, c1 - 0.08 * length), (belt, c1), (belt, c0)])
        hull = (Y >= belt) & (X >= x0) & (X <= x0 + length) & (Y <= h - 0.03 * h)
        windows = _polygon(Y, X, [(roof + 2, c0 + 0.1 * length + 2), (roof + 2, c1 - 0.08 * length - 2),
                                  (belt - 1, c1 - 3), (belt - 1, c0 + 3)])
        windows &= np.abs(X - (c0 + c1) / 2) > 1.5  # door pillar
        shine = 1.0 + 0.12 * np.clip(1 - (Y - belt) / (0.1 * h), 0, 1)[..., None]
        paint(cabin | hull, np.clip(body * shine, 0, 255))
        paint(windows, np.array([58, 72, 90], np.float32) + 30 * ((X + 2 * Y) % 17 < 4)[..., None])
        paint(hull & (np.abs(Y - (belt + 0.07 * h)) < 0.8), body * 0.6)  # trim line
        for wx in (x0 + 0.17 * length, x0 + 0.83 * length):
            paint(_ellipse(Y, X, h - 0.06 * h, wx, 0.08 * h, 0.08 * h), (24, 24, 26))
            paint(_ellipse(Y, X, h - 0.06 * h, wx, 0.035 * h, 0.035 * h), (150, 150, 155))
    elif kind == "pole":
        px = pose.centre_x + rng.uniform(-0.18, 0.18) * w
        half = rng.uniform(2.5, 5.0) * (w / 64)
        metal = np.array([110, 112, 118], np.float32) * rng.uniform(0.7, 1.3)
        bar = np.abs(X - px) <= half
        light = (1.25 - 0.5 * np.abs(X - px) / half)[..., None]
        paint(bar, np.clip(metal * light, 0, 255))
        if rng.random() < 0.6:  # a traffic sign on the pole
            sy = h * rng.uniform(0.15, 0.45)
            sign = _ellipse(Y, X, sy, px, 0.09 * h, 0.2 * w) if rng.random() < 0.5 else \
                _taper(Y, X, sy - 0.08 * h, sy + 0.08 * h, px, 0.2 * w, px, 0.2 * w)
            paint(sign, _PALETTE[str(rng.choice(["blue", "red", "white", "yellow", "green", "orange"]))])
    elif kind == "box":
        top = h * rng.uniform(0.5, 0.72)
        bx = pose.centre_x + rng.uniform(-0.2, 0.2) * w
        hw = rng.uniform(0.3, 0.55) * w
        colour = _RGB[rng.integers(len(_RGB))]
        front = (Y >= top) & (np.abs(X - bx) <= hw)
        lid = (Y >= top - 0.04 * h) & (Y < top) & (np.abs(X - bx) <= hw * 0.92)
        paint(lid, np.clip(colour * 1.15, 0, 255))
        paint(front, np.clip(colour + 6 * _smooth_noise(rng, h, w, 4)[..., None], 0, 255))
        paint(front & (np.abs(Y - top - 0.08 * h) < 1.2), colour * 0.6)  # tape / rim
        # a printed poster in two clothing colours, as large as a torso
        py, px = top + rng.uniform(0.04, 0.1) * h, bx + rng.uniform(-0.3, 0.3) * hw
        poster = front & (Y >= py) & (Y <= py + 0.22 * h) & (np.abs(X - px) <= 0.5 * hw)
        c1, c2 = rng.choice(len(_RGB), size=2, replace=False)
        paint(poster, np.where((Y >= py + 0.11 * h)[..., None], _RGB[c1], _RGB[c2]))
    elif kind == "bush":
        base = np.array([48, 104, 44], np.float32) * rng.uniform(0.8, 1.2)
        mask = np.zeros((h, w), bool)
        top = h * rng.uniform(0.45, 0.7)
        for _ in range(int(rng.integers(4, 8))):
            cy = rng.uniform(top + 0.08 * h, h)
            mask |= _ellipse(Y, X, cy, rng.uniform(-0.1, 1.1) * w, rng.uniform(0.1, 0.2) * h, rng.uniform(0.22, 0.45) * w)
        leaves = base + 40 * _smooth_noise(rng, h, w, 2.5)[..., None]
        paint(mask, leaves)
        flowers = _RGB[rng.choice(len(_RGB), size=2, replace=False)]
        for k in range(int(rng.integers(6, 14))):  # blossoms in two clothing colours
            fy, fx = rng.uniform(top + 0.05 * h, h), rng.uniform(0, w)
            blossom = mask & _ellipse(Y, X, fy, fx, rng.uniform(2.0, 4.0), rng.uniform(2.0, 4.0))
            paint(blossom, flowers[k % 2])
    elif kind == "barrier":
        top = h * rng.uniform(0.45, 0.62)
        depth = rng.uniform(0.12, 0.2) * h
        board = (Y >= top) & (Y <= top + depth)
        stripes = ((X + Y) // 8 % 2 == 0)[..., None]
        c1, c2 = rng.choice(len(_RGB), size=2, replace=False)
        paint(board, np.where(stripes, _RGB[c1], _RGB[c2]))
        for lx in (rng.uniform(0.05, 0.3) * w, rng.uniform(0.7, 0.95) * w):
            paint((Y > top + depth) & (np.abs(X - lx) <= 2.0), (90, 90, 92))
    else:
        raise ValueError(f"unknown occluder kind {kind!r}")
    return cover



def _clip_to_frame(canvas: Canvas, rng: np.random.Generator, visible_range: tuple,
                   full_area: int, background: np.ndarray) -> tuple[Canvas, float]:
    """A person cut off by the camera frame, at the body's own scale.

    The frame's edge crosses the body: below it (the body leaves the frame at the bottom, 70%)
    or on one side, where the visible share of the person drawn from ``visible_range`` is
    reached. The person keeps its place and scale, as in a detector's box of the usual size
    placed on the visible part; the cut-away part shows ``background``. (Generator version 3
    resized the clipped box to the image, stretching the visible part along the cut axis.)"""
    person = canvas.lbl > 0
    target = rng.uniform(*visible_range) * full_area
    axis = 0 if rng.random() < 0.7 else 1  # 0: keep top rows; 1: keep the columns of one side
    from_start = axis == 0 or rng.random() < 0.5  # rows from the top; columns from the left or right
    size = person.shape[axis]
    counts = person.sum(axis=1 - axis)  # person pixels per row (axis 0) or per column (axis 1)
    if not from_start:
        counts = counts[::-1]
    keep = min(max(int(np.searchsorted(np.cumsum(counts), target)) + 1, size // 3), size)
    window = slice(0, keep) if from_start else slice(size - keep, size)
    box = (window, slice(None)) if axis == 0 else (slice(None), window)
    out = Canvas(background)
    out.img[box], out.lbl[box] = canvas.img[box], canvas.lbl[box]
    return out, float(np.count_nonzero(out.lbl) / full_area)  # share of the person inside the frame
