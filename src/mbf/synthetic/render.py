"""One image of the dataset: a person in a camera's scene, occluded as its spec says."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from .canvas import Canvas
from .occluders import _clip_to_frame, _occlude
from .options import SynthOptions
from .appearance import Appearance, random_appearance
from .people import _sample_pose, draw_person
from .scenes import Camera


@dataclass(frozen=True)
class ImageSpec:
    """One image of the plan: where it goes and how it is occluded."""

    index: int  # global index; seeds the image's random generator
    split: str  # split folder
    pid: int
    camid: int  # 1-based
    frame: int
    occlusion: str  # "none" or one of OCCLUDER_KINDS

    @property
    def stem(self) -> str:
        return f"{self.pid:04d}_c{self.camid}s1_{self.frame:06d}_00"


@dataclass
class Rendered:
    image: np.ndarray  # uint8 [H, W, 3]
    labels: np.ndarray  # uint8 [H, W], 0..4
    view: str
    visible: float  # fraction of the person's labelled pixels left after occlusion



def _image_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 2, index])))



def render_image(spec: ImageSpec, app: Appearance, cam: Camera, seed: int, opts: SynthOptions) -> Rendered:
    """Draw one image and its part labels (deterministic given seed and spec.index)."""
    h, w = opts.height, opts.width
    rng = _image_rng(seed, spec.index)
    th, tw = cam.texture.shape[:2]
    oy, ox = int(rng.integers(0, th - h + 1)), int(rng.integers(0, tw - w + 1))
    background = cam.texture[oy:oy + h, ox:ox + w]
    if rng.random() < 0.5:
        background = background[:, ::-1]
    background_img = background * rng.uniform(0.9, 1.1)
    canvas = Canvas(background_img)

    pose = _sample_pose(rng, cam, app, h, w)
    draw_person(canvas, app, pose)
    full_area = max(int(np.count_nonzero(canvas.lbl)), 1)
    kind = spec.occlusion
    visible = 1.0
    if kind == "cutoff":  # clipped in every fill, so that the later random draws stay the same
        clipped, cut_visible = _clip_to_frame(canvas, rng, opts.visible_range, full_area, background_img)
        if opts.occluder_fill != "none":
            canvas, visible = clipped, cut_visible
    elif kind != "none":
        # try again (pushing harder) until the visible share of the person is in visible_range
        lo, hi = opts.visible_range
        base = canvas
        for attempt in range(6):
            push = attempt / 5  # 0 .. 1: later attempts move the occluder towards the body
            canvas = Canvas(base.img)
            canvas.lbl[...] = base.lbl
            if kind == "person":
                other = random_appearance(rng)
                shift = rng.choice([-1, 1]) * w * rng.uniform(0.15, 0.5) * (1 - 0.5 * push)
                other_pose = dataclasses.replace(
                    _sample_pose(rng, cam, other, h, w), centre_x=pose.centre_x + shift,
                    foot_y=pose.foot_y + rng.uniform(0, 0.12) * h, height=pose.height * rng.uniform(1.0, 1.18))
                cover = draw_person(canvas, other, other_pose, labelled=False)
            else:
                cover = _occlude(canvas, kind, rng, pose)
            visible = np.count_nonzero(canvas.lbl) / full_area
            if lo <= visible <= hi:
                break
        if opts.occluder_fill == "background":
            canvas.img[cover] = background_img[cover]
        elif opts.occluder_fill == "none":  # drawn and dropped, so that the later random draws stay the same
            canvas, visible = base, 1.0

    jitter = rng.uniform(0.9, 1.1) * rng.uniform(0.97, 1.03, 3).astype(np.float32)
    img = canvas.img * (1 + opts.lighting * (cam.gain * jitter - 1))
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    pil = pil.filter(ImageFilter.GaussianBlur(cam.blur * rng.uniform(0.8, 1.2)))
    out = np.asarray(pil, np.float32) + rng.normal(0, cam.noise, (h, w, 3)).astype(np.float32)
    return Rendered(np.clip(out + 0.5, 0, 255).astype(np.uint8), canvas.lbl, pose.view, visible)

