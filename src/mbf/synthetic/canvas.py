"""An image with a part-label map, and the primitives figures are drawn from (masks on a pixel grid)."""
from __future__ import annotations

import numpy as np
from PIL import Image


class Canvas:
    """An RGB float image with a label map; primitives are boolean masks on a pixel grid."""

    def __init__(self, background: np.ndarray):
        self.img = background.astype(np.float32, copy=True)
        h, w = self.img.shape[:2]
        self.lbl = np.zeros((h, w), np.uint8)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        self.Y, self.X = yy + 0.5, xx + 0.5  # pixel centres

    def paint(self, mask: np.ndarray, colour, label: int) -> None:
        colour = np.asarray(colour, np.float32)
        self.img[mask] = colour[mask] if colour.ndim == 3 else colour
        self.lbl[mask] = label


def _ellipse(Y, X, cy, cx, ry, rx):
    return ((Y - cy) / ry) ** 2 + ((X - cx) / rx) ** 2 <= 1.0


def _taper(Y, X, y0, y1, cx0, hw0, cx1, hw1):
    """A vertical segment from y0 to y1 whose centre and half-width vary linearly."""
    t = (Y - y0) / max(y1 - y0, 1e-3)
    inside = (t >= 0) & (t <= 1)
    return inside & (np.abs(X - (cx0 + (cx1 - cx0) * t)) <= hw0 + (hw1 - hw0) * t)


def _capsule(Y, X, p0, p1, r):
    """Pixels within r of the segment p0-p1 (points are (y, x))."""
    (y0, x0), (y1, x1) = p0, p1
    dy, dx = y1 - y0, x1 - x0
    t = np.clip(((Y - y0) * dy + (X - x0) * dx) / max(dy * dy + dx * dx, 1e-6), 0, 1)
    return (Y - (y0 + t * dy)) ** 2 + (X - (x0 + t * dx)) ** 2 <= r * r


def _polygon(Y, X, points):
    """Inside of a convex polygon given as (y, x) vertices in either orientation."""
    pts = np.asarray(points, np.float32)
    nxt = np.roll(pts, -1, axis=0)
    area = np.sum(pts[:, 1] * nxt[:, 0] - nxt[:, 1] * pts[:, 0])
    sign = 1.0 if area >= 0 else -1.0
    inside = np.ones(Y.shape, bool)
    for (ya, xa), (yb, xb) in zip(pts, nxt):
        inside &= sign * ((xb - xa) * (Y - ya) - (yb - ya) * (X - xa)) >= 0
    return inside



def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Zero-mean, unit-ish smooth noise: a coarse random grid upsampled bicubically."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    coarse = rng.standard_normal((gh, gw)).astype(np.float32)
    return np.asarray(Image.fromarray(coarse).resize((w, h), Image.BICUBIC), np.float32)

