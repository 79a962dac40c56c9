"""Cameras: background textures, lighting and optics of each camera."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .canvas import _smooth_noise
from .options import SynthOptions


@dataclass
class Camera:
    """One camera's look: a background texture to crop from, lighting and optics."""

    texture: np.ndarray  # float32 [Ht, Wt, 3]
    gain: np.ndarray  # RGB multipliers
    blur: float  # Gaussian blur radius (px)
    noise: float  # pixel noise std (0..255 scale)
    scale: float  # person height as a fraction of the image height
    foot: float  # soles' distance above the bottom edge, fraction of the image height
    x_bias: float  # horizontal offset of the person, fraction of the width


def _texture(style: int, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Background texture of one of four styles: street, park, brick wall, indoor."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    n1 = _smooth_noise(rng, h, w, 6)[..., None]
    n2 = _smooth_noise(rng, h, w, 24)[..., None]
    hue = rng.uniform(-18, 18, 3).astype(np.float32)
    horizon = h * rng.uniform(0.5, 0.62)
    sky = (yy < horizon)[..., None]
    if style == 0:  # street: facade with windows above, paved sidewalk below
        facade = np.array([196, 178, 150], np.float32) + hue
        win = ((yy % 22) > 8) & ((xx % 18) > 6) & (yy < horizon - 8)
        top = np.where(win[..., None], np.array([70, 84, 100], np.float32), facade)
        tiles = ((yy % 14) < 1.2) | ((xx + (yy // 14) * 9) % 22 < 1.2)
        pave = np.where(tiles[..., None], 92.0, 138.0) + np.zeros(3, np.float32) + hue * 0.3
        out = np.where(sky, top, pave) + 10 * n1 + 14 * n2
    elif style == 1:  # park: foliage and sky above, grass and a path below
        leaves = np.array([52, 92, 44], np.float32) + 35 * _smooth_noise(rng, h, w, 10)[..., None]
        sky_c = np.array([150, 180, 210], np.float32)
        canopy = _smooth_noise(rng, h, w, 14) > -0.1 + (yy / horizon - 0.7)
        top = np.where(canopy[..., None], leaves, sky_c)
        grass = np.array([84, 136, 60], np.float32) + hue * 0.4 + 18 * n1
        path = np.abs(xx - w * 0.5 - (yy - horizon) * 0.4) < (yy - horizon) * 0.6 + 6
        bottom = np.where(path[..., None], np.array([168, 150, 118], np.float32) + 8 * n1, grass)
        out = np.where(sky, top, bottom) + 8 * n2
    elif style == 2:  # brick wall with a strip of floor
        row = (yy // 9).astype(np.int64)
        mortar = ((yy % 9) < 1.5) | (((xx + (row % 2) * 10) % 20) < 1.5)
        brick = np.array([150, 72, 52], np.float32) + hue * 0.5 + 16 * _smooth_noise(rng, h, w, 3)[..., None]
        wall = np.where(mortar[..., None], np.array([170, 160, 150], np.float32), brick)
        floor = (yy > h * 0.86)[..., None]
        out = np.where(floor, np.array([110, 106, 100], np.float32) + 10 * n1, wall) + 8 * n2
    else:  # indoor: panelled wall and a tiled floor
        wall = np.array([212, 212, 200], np.float32) + hue * 0.6
        panels = ((xx % 26) < 2.0)
        top = np.where(panels[..., None], wall * 0.82, wall)
        checker = ((yy // 12 + xx // 16) % 2).astype(np.float32)[..., None]
        floor = np.array([150, 150, 160], np.float32) + 22 * checker + hue * 0.3
        out = np.where(sky, top, floor) + 6 * n1 + 10 * n2
    return np.clip(out, 0, 255).astype(np.float32)


_CAMERA_LOOKS = [  # gain, blur, noise, scale, foot, x_bias
    ((1.0, 1.0, 1.0), 0.5, 3.0, 0.9, 0.03, 0.0),
    ((1.08, 1.02, 0.86), 0.7, 4.0, 0.84, 0.05, 0.04),
    ((0.8, 0.78, 0.82), 0.9, 6.0, 0.8, 0.09, -0.04),
    ((0.9, 0.98, 1.14), 0.6, 3.5, 0.87, 0.04, 0.03),
]


def make_cameras(seed: int, opts: SynthOptions) -> list[Camera]:
    cams = []
    for k in range(opts.num_cameras):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 3, k])))
        gain, blur, noise, scale, foot, x_bias = _CAMERA_LOOKS[k % len(_CAMERA_LOOKS)]
        gain = np.array(gain, np.float32)
        if k >= len(_CAMERA_LOOKS):  # extra cameras: a varied copy of a base look
            gain = gain * rng.uniform(0.9, 1.1, 3).astype(np.float32)
            scale *= rng.uniform(0.92, 1.05)
        tex = _texture(k % 4, rng, opts.height + opts.height // 4, opts.width * 3)
        cams.append(Camera(tex, gain, blur, noise, scale, foot, x_bias))
    return cams

