"""A small synthetic occluded re-ID dataset that needs no download.

``generate(out_dir, seed)`` draws simple pedestrians with numpy (ellipses, tapered segments
and polygons evaluated on a pixel grid) and writes them in the Market-1501 layout::

    out_dir/bounding_box_train/0007_c2s1_000123_00.jpg   training identities
    out_dir/query/...                                     occluded queries (test identities)
    out_dir/bounding_box_test/...                         mostly holistic gallery + distractors
    out_dir/masks/<split folder>/<image stem>.png         ground-truth part labels
    out_dir/annotations.csv                               per image: view, occlusion, visibility
    out_dir/synthetic.json                                manifest (seed, version, options, counts)

Identities differ in clothing colours and patterns, body shape, hair and accessories; the
cameras differ in background, lighting, blur, noise, scale and position. Queries are occluded
the way Occluded-Duke queries are: by objects (cars, poles, boxes, bushes, barriers), by
another pedestrian in front, or by the frame cutting the body off.

Part labels follow the parser's merged classes (see METHOD.md section 3): 0 background,
1 head (face, hair, hat, neck), 2 upper body (torso, arms, bags), 3 lower body (trousers,
shorts, skirts), 4 shoes; bare legs are background, as the parser's leg->background merge
makes them; every pixel of an occluder (objects and other people) is 0.

The output is a pure function of the seed and the options: every image has its own random
generator seeded from (seed, image index), and images are written by PIL with fixed
settings and no metadata, so the same seed gives the same bytes (for a given numpy/Pillow).
"""
from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
import numpy as np
from PIL import Image, ImageFilter

from ..errors import DatasetError

log = logging.getLogger(__name__)

GENERATOR_VERSION = 3  # 2: distinct colours, no look-alikes, milder occlusion; 3: cut-off bodies as clipped boxes
DATASET_DIR_NAME = "Synthetic_Occluded"  # folder under DATASETS.ROOT_DIR read by `synthetic_occ`
TRAIN_DIR, QUERY_DIR, GALLERY_DIR = "bounding_box_train", "query", "bounding_box_test"
SPLIT_DIRS = (TRAIN_DIR, QUERY_DIR, GALLERY_DIR)
MASK_DIR = "masks"
MANIFEST_NAME = "synthetic.json"
ANNOTATIONS_NAME = "annotations.csv"
_INCOMPLETE_MARKER = ".synthetic_incomplete"
_FORMAT = "mbf-synthetic"

# part labels of the merged parser classes (mirrors mbf.parsing.labels)
BACKGROUND, HEAD, UPPER, LOWER, SHOES = 0, 1, 2, 3, 4

OCCLUDER_KINDS = ("car", "pole", "box", "bush", "barrier", "person", "cutoff")
# how an occluder is drawn: "object" (the dataset); "background" paints its pixels with the
# background behind it (the same body pixels hidden, nothing left to mistake for the person; a
# frame cut keeps the body's scale instead of stretching the clipped box); "none" leaves it out
# (the holistic version of the same image). The last two are diagnostics: they split an
# occluded query's loss into hidden information and distraction.
OCCLUDER_FILLS = ("object", "background", "none")


@dataclass(frozen=True)
class SynthOptions:
    """Everything besides the seed that shapes the dataset (all recorded in the manifest)."""

    num_ids: int = 300  # identities with images, split into train and test by test_fraction
    test_fraction: float = 1 / 3
    num_distractor_ids: int = 50  # extra identities that appear only in the gallery
    num_cameras: int = 4
    height: int = 128
    width: int = 64
    train_images_per_id: int = 8
    query_images_per_id: int = 2  # in distinct cameras
    gallery_images_per_id: int = 6  # covers every camera when >= num_cameras
    distractor_images_per_id: int = 3
    train_occluded: float = 0.15  # fraction of training images with an occluder
    query_occluded: float = 1.0
    gallery_occluded: float = 0.1
    similar_fraction: float = 0.0  # identities that copy another one and change 1-2 attributes (hard negatives)
    lighting: float = 0.7  # scales the cameras' colour casts and per-image brightness jitter (0: none)
    visible_range: tuple = (0.5, 0.9)  # share of the person an occluder leaves visible (retried)
    # occluder mixture (relative weights over OCCLUDER_KINDS)
    occluder_weights: tuple = (0.14, 0.10, 0.12, 0.12, 0.07, 0.30, 0.15)
    jpeg_quality: int = 92
    occluder_fill: str = "object"  # one of OCCLUDER_FILLS (the other two are diagnostics)

    def validate(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise DatasetError(f"synthetic dataset option {what}")

        need(self.num_ids >= 2, f"num_ids must be >= 2, got {self.num_ids}")
        need(0 < self.test_fraction < 1, f"test_fraction must be in (0, 1), got {self.test_fraction}")
        need(2 <= self.num_cameras <= 6, f"num_cameras must be 2..6 (Market names), got {self.num_cameras}")
        need(self.num_ids + self.num_distractor_ids <= 1501,
             f"num_ids + num_distractor_ids must be <= 1501 (Market pids), got {self.num_ids + self.num_distractor_ids}")
        need(self.num_distractor_ids >= 0, f"num_distractor_ids must be >= 0, got {self.num_distractor_ids}")
        need(self.height >= 32 and self.width >= 16, f"image size must be at least 32x16, got {self.height}x{self.width}")
        need(self.train_images_per_id >= 2, f"train_images_per_id must be >= 2, got {self.train_images_per_id}")
        need(1 <= self.query_images_per_id < self.num_cameras,
             f"query_images_per_id must be in 1..num_cameras-1, got {self.query_images_per_id}")
        need(self.gallery_images_per_id >= 2, f"gallery_images_per_id must be >= 2, got {self.gallery_images_per_id}")
        need(self.distractor_images_per_id >= 1 or self.num_distractor_ids == 0,
             f"distractor_images_per_id must be >= 1, got {self.distractor_images_per_id}")
        for name in ("train_occluded", "query_occluded", "gallery_occluded", "similar_fraction"):
            value = getattr(self, name)
            need(0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value}")
        need(len(self.occluder_weights) == len(OCCLUDER_KINDS) and sum(self.occluder_weights) > 0
             and min(self.occluder_weights) >= 0,
             f"occluder_weights needs {len(OCCLUDER_KINDS)} non-negative weights for {OCCLUDER_KINDS}")
        need(self.occluder_fill in OCCLUDER_FILLS,
             f"occluder_fill must be one of {OCCLUDER_FILLS}, got {self.occluder_fill!r}")
        need(50 <= self.jpeg_quality <= 100, f"jpeg_quality must be 50..100, got {self.jpeg_quality}")
        need(0.0 <= self.lighting <= 2.0, f"lighting must be in [0, 2], got {self.lighting}")
        vr = tuple(self.visible_range)
        need(len(vr) == 2 and 0.0 <= vr[0] < vr[1] <= 1.0,
             f"visible_range must be (low, high) with 0 <= low < high <= 1, got {self.visible_range}")

    @property
    def num_test_ids(self) -> int:
        return min(self.num_ids - 1, max(1, round(self.num_ids * self.test_fraction)))

    @property
    def num_train_ids(self) -> int:
        return self.num_ids - self.num_test_ids

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["occluder_weights"] = list(self.occluder_weights)
        out["visible_range"] = list(self.visible_range)
        return out

    @classmethod
    def from_dict(cls, mapping: dict) -> "SynthOptions":
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in mapping.items() if k in known}
        for name in ("occluder_weights", "visible_range"):
            if name in kwargs:
                kwargs[name] = tuple(kwargs[name])
        return cls(**kwargs)


@dataclass
class SynthSummary:
    """What a generated dataset holds (also the manifest's content)."""

    root: str
    seed: int
    version: int
    options: dict
    counts: dict  # split folder -> number of images
    identities: dict  # train / test / distractor -> number of identities
    occlusion: dict  # split folder -> {occluder kind or "none": count}
    seconds: float = 0.0

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        for volatile in ("root", "seconds"):  # the manifest depends on the seed and options only
            out.pop(volatile)
        out["format"] = _FORMAT
        return out


# ----------------------------------------------------------------------------- appearance

_PALETTE = {
    "black": (28, 28, 32), "charcoal": (68, 68, 74), "grey": (128, 128, 132), "white": (226, 226, 220),
    "navy": (30, 40, 92), "blue": (40, 82, 172), "lightblue": (122, 172, 222), "red": (182, 32, 38),
    "maroon": (112, 30, 42), "green": (40, 122, 62), "olive": (102, 110, 52), "khaki": (192, 172, 122),
    "brown": (112, 76, 46), "yellow": (226, 200, 52), "orange": (230, 122, 32), "pink": (230, 142, 172),
    "purple": (112, 62, 142), "teal": (30, 132, 132),
}
_NAMES = list(_PALETTE)
COLOUR_JITTER = 30.0  # per-identity RGB offset around the palette colour
_RGB = np.array([_PALETTE[n] for n in _NAMES], dtype=np.float32)


def _weights(favoured: dict) -> np.ndarray:
    w = np.array([favoured.get(n, 1.0) for n in _NAMES], dtype=np.float64)
    return w / w.sum()


# every palette colour equally likely: with the favoured dark colours of real footage, a few
# hundred identities collide too often for a tiny model trained from scratch
_UPPER_P = _weights({})
_LOWER_P = _weights({})
_SKIN = np.array([(236, 200, 170), (222, 178, 140), (190, 142, 104), (150, 104, 70), (102, 68, 46)], np.float32)
_HAIR = np.array([(24, 20, 18), (58, 38, 24), (100, 66, 38), (196, 164, 100), (150, 150, 150), (128, 52, 30)],
                 np.float32)
_HAIR_P = np.array([0.4, 0.25, 0.13, 0.1, 0.06, 0.06])
_SHOE = np.array([(25, 25, 25), (60, 44, 34), (225, 225, 225), (110, 110, 118), (150, 40, 40)], np.float32)
_SHOE_P = np.array([0.4, 0.2, 0.25, 0.1, 0.05])


def _colour(rng: np.random.Generator, probs: np.ndarray, avoid: np.ndarray | None = None) -> np.ndarray:
    """A palette colour (optionally unlike `avoid`) with an identity-specific jitter."""
    for _ in range(8):
        c = _RGB[rng.choice(len(_RGB), p=probs)]
        if avoid is None or np.abs(c - avoid).sum() > 90:
            break
    return np.clip(c + rng.uniform(-COLOUR_JITTER, COLOUR_JITTER, 3), 0, 255).astype(np.float32)


@dataclass(frozen=True)
class Appearance:
    """The identity-specific look of one pedestrian (colours are float RGB 0..255)."""

    skin: np.ndarray
    hair: np.ndarray
    hair_style: str  # short | long | bald
    upper: np.ndarray
    upper2: np.ndarray  # secondary colour of the pattern
    pattern: str  # plain | hstripes | vstripes | checks | logo | jacket
    period: float  # stripe/check period as a fraction of the body height
    sleeves: str  # long | short
    lower: np.ndarray
    lower_style: str  # trousers | shorts | skirt
    shoes: np.ndarray
    height: float  # body height factor
    width: float  # body width factor
    head: float  # head size factor
    hat: np.ndarray | None
    bag: str  # none | backpack | handbag
    bag_colour: np.ndarray
    bag_side: int  # -1 left, +1 right (seen from the front)


def random_appearance(rng: np.random.Generator) -> Appearance:
    upper = _colour(rng, _UPPER_P)
    return Appearance(
        skin=_SKIN[rng.integers(len(_SKIN))] + rng.uniform(-8, 8, 3).astype(np.float32),
        hair=_HAIR[rng.choice(len(_HAIR), p=_HAIR_P)],
        hair_style=str(rng.choice(["short", "long", "bald"], p=[0.6, 0.32, 0.08])),
        upper=upper,
        upper2=_colour(rng, _UPPER_P, avoid=upper),
        pattern=str(rng.choice(["plain", "hstripes", "vstripes", "checks", "logo", "jacket"],
                               p=[0.3, 0.18, 0.1, 0.12, 0.14, 0.16])),
        period=float(rng.uniform(0.045, 0.08)),
        sleeves=str(rng.choice(["long", "short"], p=[0.7, 0.3])),
        lower=_colour(rng, _LOWER_P),
        lower_style=str(rng.choice(["trousers", "shorts", "skirt"], p=[0.68, 0.14, 0.18])),
        shoes=_SHOE[rng.choice(len(_SHOE), p=_SHOE_P)] + rng.uniform(-8, 8, 3).astype(np.float32),
        height=float(rng.uniform(0.9, 1.05)),
        width=float(rng.uniform(0.85, 1.2)),
        head=float(rng.uniform(0.92, 1.08)),
        hat=_colour(rng, _UPPER_P) if rng.random() < 0.15 else None,
        bag=str(rng.choice(["none", "backpack", "handbag"], p=[0.5, 0.3, 0.2])),
        bag_colour=_colour(rng, _UPPER_P),
        bag_side=int(rng.choice([-1, 1])),
    )


def similar_appearance(base: Appearance, rng: np.random.Generator) -> Appearance:
    """A look-alike: ``base`` with one or two attributes drawn again (hard negatives)."""
    fresh = random_appearance(rng)
    groups = {
        "lower": ("lower", "lower_style"),
        "pattern": ("pattern", "upper2", "period"),
        "upper": ("upper",),
        "bag": ("bag", "bag_colour", "bag_side"),
        "hair": ("hair", "hair_style", "hat"),
        "shoes": ("shoes",),
        "shape": ("height", "width"),
    }
    names = list(groups)
    picked = rng.choice(len(names), size=int(rng.integers(1, 3)), replace=False)
    changes = {}
    for i in picked:
        for attr in groups[names[i]]:
            changes[attr] = getattr(fresh, attr)
    return dataclasses.replace(base, **changes)


# ----------------------------------------------------------------------------- drawing


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


@dataclass(frozen=True)
class Pose:
    """Where and how one pedestrian stands in one image (pixels)."""

    foot_y: float  # y of the soles
    centre_x: float
    height: float  # head top to soles
    view: str  # front | back | side
    facing: int  # +1 towards the right of the image, -1 to the left (side view)
    phase: float  # walking phase in radians
    lean: float  # horizontal shift per pixel of height


def draw_person(canvas: Canvas, app: Appearance, pose: Pose, labelled: bool = True) -> np.ndarray:
    """Draw one pedestrian; return its pixel coverage. ``labelled=False`` draws an occluder."""
    H = pose.height
    Y = canvas.Y
    X = canvas.X - pose.lean * (pose.foot_y - canvas.Y)  # lean by shearing the grid
    cover = np.zeros(Y.shape, bool)

    def paint(mask, colour, label):
        canvas.paint(mask, colour, label if labelled else BACKGROUND)
        cover[mask] = True

    top = pose.foot_y - H
    cx = pose.centre_x
    side = pose.view == "side"
    front = pose.view == "front"
    wf = app.width * (0.62 if side else 1.0)
    # body landmarks as fractions of the height
    head_cy, head_ry = top + 0.075 * H * app.head, 0.072 * H * app.head
    head_rx = 0.052 * H * app.head
    shoulder_y, hip_y, ankle_y = top + 0.175 * H, top + 0.52 * H, top + 0.94 * H
    shoulder_hw, waist_hw = 0.14 * H * wf, 0.115 * H * wf
    swing = math.sin(pose.phase)
    step = swing * (0.11 * H if side else 0.025 * H)

    # ---- long hair behind the head (front / side)
    if app.hair_style == "long" and pose.view != "back":
        paint(_taper(Y, X, head_cy, shoulder_y + 0.06 * H, cx, head_rx * 1.1, cx, head_rx * 1.25),
              app.hair, HEAD)

    # ---- backpack seen from the side sits behind the torso
    if app.bag == "backpack" and side:
        bx = cx - pose.facing * (shoulder_hw + 0.03 * H)
        paint(_ellipse(Y, X, shoulder_y + 0.14 * H, bx, 0.12 * H, 0.055 * H), app.bag_colour, UPPER)

    # ---- legs (skin legs are background after the parser's leg merge)
    leg_hw0, leg_hw1 = 0.058 * H * app.width, 0.038 * H
    hip_dx = 0.05 * H * wf
    legs = []
    for k, sgn in enumerate((-1.0, 1.0)):
        foot_x = cx + sgn * hip_dx * (0.4 if side else 1.0) + (step if k == 0 else -step)
        legs.append((_taper(Y, X, hip_y - 0.01 * H, ankle_y, cx + sgn * hip_dx * (0.4 if side else 1.0),
                            leg_hw0, foot_x, leg_hw1), foot_x))
    trousers = app.lower_style == "trousers"
    for mask, _ in legs:
        paint(mask, app.lower if trousers else app.skin, LOWER if trousers else BACKGROUND)
    # ---- shoes
    for _, foot_x in legs:
        fx = foot_x + (pose.facing * 0.02 * H if side else 0.0)
        paint(_ellipse(Y, X, ankle_y + 0.025 * H, fx, 0.032 * H, (0.055 if side else 0.04) * H), app.shoes, SHOES)
    # ---- shorts / skirt over the legs
    if app.lower_style == "shorts":
        paint(_taper(Y, X, hip_y - 0.02 * H, hip_y + 0.16 * H, cx, waist_hw * 1.02, cx, waist_hw * 1.12),
              app.lower, LOWER)
    elif app.lower_style == "skirt":
        length = 0.26 * H if app.period > 0.06 else 0.36 * H  # identity-specific length
        paint(_taper(Y, X, hip_y - 0.02 * H, hip_y + length, cx, waist_hw, cx, waist_hw * 1.55), app.lower, LOWER)

    # ---- arms: capsules swinging against the legs; far arm behind the torso in side view
    arm_len, arm_r = 0.34 * H, 0.03 * H * max(app.width, 0.9)

    def arm(sgn: float, behind: bool):
        sx = cx + (sgn * (shoulder_hw - arm_r * 0.8) if not side else -pose.facing * 0.01 * H)
        sy = shoulder_y + 0.02 * H
        if side:
            ang = (swing if sgn > 0 else -swing) * 0.5
            hx, hy = sx + pose.facing * math.sin(ang) * arm_len, sy + math.cos(ang) * arm_len
        else:
            hx, hy = sx + sgn * 0.035 * H, sy + arm_len * (1 - 0.08 * abs(swing))
        sleeve_end = 1.0 if app.sleeves == "long" else 0.4
        ey, ex = sy + (hy - sy) * sleeve_end, sx + (hx - sx) * sleeve_end
        whole = _capsule(Y, X, (sy, sx), (hy, hx), arm_r)
        dim = 0.8 if behind else 1.0
        paint(whole, app.skin * dim, UPPER)
        paint(whole & _capsule(Y, X, (sy, sx), (ey, ex), arm_r * 1.05), app.upper * dim, UPPER)
        paint(_ellipse(Y, X, hy, hx, arm_r * 1.15, arm_r * 1.0), app.skin * dim, UPPER)  # hand

    if side:
        arm(-1.0, behind=True)
    else:
        arm(-1.0, behind=False)
        arm(1.0, behind=False)

    # ---- torso with the identity's pattern
    torso = _polygon(Y, X, [(shoulder_y, cx - shoulder_hw), (shoulder_y, cx + shoulder_hw),
                            (hip_y + 0.02 * H, cx + waist_hw), (hip_y + 0.02 * H, cx - waist_hw)])
    torso |= _ellipse(Y, X, shoulder_y + 0.01 * H, cx, 0.035 * H, shoulder_hw)  # round shoulders
    period = max(app.period * H, 3.0)
    u, v = (Y - shoulder_y) / period, (X - cx) / period
    if app.pattern == "hstripes":
        alt = (np.floor(u) % 2) == 1
    elif app.pattern == "vstripes":
        alt = (np.floor(v + 0.5) % 2) == 1
    elif app.pattern == "checks":
        alt = ((np.floor(u) + np.floor(v + 0.5)) % 2) == 1
    elif app.pattern == "logo" and front:
        alt = _polygon(Y, X, [(shoulder_y + 0.07 * H, cx), (shoulder_y + 0.13 * H, cx + 0.055 * H),
                              (shoulder_y + 0.19 * H, cx), (shoulder_y + 0.13 * H, cx - 0.055 * H)])
    elif app.pattern == "jacket" and front:
        alt = np.abs(X - cx) <= 0.035 * H
    elif app.pattern == "jacket":  # a jacket seen from the back: a contrasting collar
        alt = Y <= shoulder_y + 0.03 * H
    else:
        alt = None
    colour = app.upper if alt is None else np.where(alt[..., None], app.upper2, app.upper)
    paint(torso, colour, UPPER)

    # ---- accessories in front of the torso
    if app.bag == "backpack" and pose.view == "back":
        paint(_polygon(Y, X, [(shoulder_y + 0.03 * H, cx - 0.085 * H * wf), (shoulder_y + 0.03 * H, cx + 0.085 * H * wf),
                              (shoulder_y + 0.29 * H, cx + 0.095 * H * wf), (shoulder_y + 0.29 * H, cx - 0.095 * H * wf)]),
              app.bag_colour, UPPER)
    elif app.bag == "backpack" and front:
        for sgn in (-1, 1):
            x0 = cx + sgn * 0.075 * H * wf
            paint(_taper(Y, X, shoulder_y, shoulder_y + 0.2 * H, x0, 0.012 * H, x0, 0.012 * H), app.bag_colour, UPPER)
    if app.bag == "handbag":
        bag_side = app.bag_side * (1 if front else -1)
        bx = cx + bag_side * (waist_hw + 0.035 * H) if not side else cx + pose.facing * 0.02 * H
        by = hip_y + 0.02 * H
        strap_x = cx - bag_side * shoulder_hw * 0.7 if not side else cx
        paint(_capsule(Y, X, (shoulder_y, strap_x), (by - 0.05 * H, bx), 0.009 * H), app.bag_colour * 0.8, UPPER)
        paint(_polygon(Y, X, [(by - 0.05 * H, bx - 0.06 * H), (by - 0.05 * H, bx + 0.06 * H),
                              (by + 0.05 * H, bx + 0.065 * H), (by + 0.05 * H, bx - 0.065 * H)]), app.bag_colour, UPPER)
    if side:
        arm(1.0, behind=False)

    # ---- neck, head, hair, hat
    paint(_taper(Y, X, head_cy, shoulder_y + 0.005 * H, cx, 0.025 * H, cx, 0.03 * H), app.skin * 0.92, HEAD)
    head_cx = cx + (pose.facing * 0.01 * H if side else 0.0)
    head = _ellipse(Y, X, head_cy, head_cx, head_ry, head_rx)
    paint(head, app.skin, HEAD)
    if app.hair_style != "bald":
        if pose.view == "back":
            hair = head & (Y <= head_cy + 0.55 * head_ry)
        elif side:
            hair = head & ((Y <= head_cy - 0.3 * head_ry) | (pose.facing * (X - head_cx) <= -0.25 * head_rx))
        else:
            hair = head & (Y <= head_cy - 0.35 * head_ry)
        hair |= _ellipse(Y, X, head_cy - 0.2 * head_ry, head_cx, head_ry * 0.95, head_rx * 1.08) & (Y <= head_cy - 0.2 * head_ry)
        paint(hair, app.hair, HEAD)
        if app.hair_style == "long" and pose.view == "back":
            paint(_taper(Y, X, head_cy, shoulder_y + 0.1 * H, cx, head_rx * 1.05, cx, head_rx * 1.3), app.hair, HEAD)
    if front or side:  # eyes
        for sgn in ((-1, 1) if front else (pose.facing,)):
            ex = head_cx + sgn * 0.4 * head_rx if front else head_cx + sgn * 0.5 * head_rx
            paint(_ellipse(Y, X, head_cy, ex, 0.011 * H, 0.009 * H), (30, 25, 25), HEAD)
    if app.hat is not None:
        cap = _ellipse(Y, X, head_cy - 0.3 * head_ry, head_cx, head_ry * 0.85, head_rx * 1.12) & (Y <= head_cy - 0.25 * head_ry)
        brim_x = head_cx + (pose.facing * head_rx * 0.9 if side else 0.0)
        cap |= _ellipse(Y, X, head_cy - 0.28 * head_ry, brim_x, 0.018 * H, head_rx * (0.9 if side else 1.2))
        paint(cap, app.hat, HEAD)

    # ---- simple shading: darker towards the silhouette's sides
    dx = np.abs(X - cx) / max(shoulder_hw * 1.3, 1.0)
    shade = 1.0 - 0.28 * np.clip(dx, 0, 1) ** 2
    canvas.img[cover] *= shade[cover][:, None]
    return cover


# ----------------------------------------------------------------------------- cameras


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Zero-mean, unit-ish smooth noise: a coarse random grid upsampled bicubically."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    coarse = rng.standard_normal((gh, gw)).astype(np.float32)
    return np.asarray(Image.fromarray(coarse).resize((w, h), Image.BICUBIC), np.float32)


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


# ----------------------------------------------------------------------------- occluders


def _occlude(canvas: Canvas, kind: str, rng: np.random.Generator, pose: Pose) -> np.ndarray:
    """Draw one object occluder in front of the target (all its pixels become label 0); return its coverage."""
    h, w = canvas.lbl.shape
    Y, X = canvas.Y, canvas.X
    cover = np.zeros((h, w), bool)

    def paint(mask, colour):
        canvas.paint(mask, colour, BACKGROUND)
        cover[mask] = True

    if kind == "car":  # a parked car seen from the side, longer than the image is wide
        body = np.array(_PALETTE[str(rng.choice(["white", "black", "grey", "red", "blue", "navy", "charcoal"]))],
                        np.float32) + rng.uniform(-10, 10, 3).astype(np.float32)
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
            paint(sign, _PALETTE[str(rng.choice(["blue", "red", "white", "yellow"]))])
    elif kind == "box":
        top = h * rng.uniform(0.5, 0.72)
        bx = pose.centre_x + rng.uniform(-0.2, 0.2) * w
        hw = rng.uniform(0.3, 0.55) * w
        colour = np.array(_PALETTE[str(rng.choice(["brown", "khaki", "green", "grey", "teal"]))], np.float32)
        front = (Y >= top) & (np.abs(X - bx) <= hw)
        lid = (Y >= top - 0.04 * h) & (Y < top) & (np.abs(X - bx) <= hw * 0.92)
        paint(lid, colour * 1.2)
        paint(front, colour + 6 * _smooth_noise(rng, h, w, 4)[..., None])
        paint(front & (np.abs(Y - top - 0.08 * h) < 1.2), colour * 0.6)  # tape / rim
    elif kind == "bush":
        base = np.array([48, 104, 44], np.float32) * rng.uniform(0.8, 1.2)
        mask = np.zeros((h, w), bool)
        top = h * rng.uniform(0.45, 0.7)
        for _ in range(int(rng.integers(4, 8))):
            cy = rng.uniform(top + 0.08 * h, h)
            mask |= _ellipse(Y, X, cy, rng.uniform(-0.1, 1.1) * w, rng.uniform(0.1, 0.2) * h, rng.uniform(0.22, 0.45) * w)
        leaves = base + 40 * _smooth_noise(rng, h, w, 2.5)[..., None]
        paint(mask, leaves)
    elif kind == "barrier":
        top = h * rng.uniform(0.45, 0.62)
        depth = rng.uniform(0.12, 0.2) * h
        board = (Y >= top) & (Y <= top + depth)
        stripes = ((X + Y) // 8 % 2 == 0)[..., None]
        paint(board, np.where(stripes, np.array([210, 40, 40], np.float32), np.array([235, 235, 230], np.float32)))
        for lx in (rng.uniform(0.05, 0.3) * w, rng.uniform(0.7, 0.95) * w):
            paint((Y > top + depth) & (np.abs(X - lx) <= 2.0), (90, 90, 92))
    else:
        raise ValueError(f"unknown occluder kind {kind!r}")
    return cover


# ----------------------------------------------------------------------------- one image


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


def _clip_to_frame(canvas: Canvas, rng: np.random.Generator, visible_range: tuple,
                   full_area: int, background: np.ndarray | None = None) -> tuple[Canvas, float]:
    """A person cut off by the camera frame, as a detector's box clipped to the frame sees it.

    The box keeps the visible part only: the top rows (the body leaves the frame at the bottom,
    70%) or the columns on one side (it leaves sideways), cut where the visible share of the
    person drawn from ``visible_range`` is reached; the clipped box is then resized to the
    image size like every re-ID crop, which stretches it along the cut axis. With ``background``
    (the "background" occluder fill) the box is not resized: it keeps its place and scale and
    the cut-away part shows ``background``, so the same body pixels are hidden, nothing stretched."""
    h, w = canvas.lbl.shape
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
    img, lbl = canvas.img[box], canvas.lbl[box]
    if background is not None:
        out = Canvas(background)
        out.img[box], out.lbl[box] = img, lbl
        return out, float(np.count_nonzero(lbl) / full_area)
    out = Canvas(np.asarray(Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).resize((w, h), Image.BILINEAR),
                            np.float32))
    out.lbl[...] = np.asarray(Image.fromarray(lbl).resize((w, h), Image.NEAREST))
    return out, float(np.count_nonzero(lbl) / full_area)  # share of the person inside the box


def _image_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 2, index])))


def _sample_pose(rng: np.random.Generator, cam: Camera, app: Appearance, h: int, w: int) -> Pose:
    view = str(rng.choice(["front", "back", "side"], p=[0.4, 0.35, 0.25]))
    height = h * cam.scale * app.height * rng.uniform(0.95, 1.05)
    return Pose(
        foot_y=h * (1 - cam.foot) + rng.uniform(-2.5, 2.5),
        centre_x=w * (0.5 + cam.x_bias) + rng.uniform(-3.5, 3.5),
        height=height,
        view=view,
        facing=int(rng.choice([-1, 1])),
        phase=float(rng.uniform(0, 2 * math.pi)),
        lean=float(rng.uniform(-0.05, 0.05)),
    )


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
        clipped, cut_visible = _clip_to_frame(canvas, rng, opts.visible_range, full_area,
                                              background_img if opts.occluder_fill == "background" else None)
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


# ----------------------------------------------------------------------------- plan


def _plan(seed: int, opts: SynthOptions) -> tuple[list[ImageSpec], dict[int, Appearance], dict]:
    """Identities, their appearances and every image's split, camera, frame and occluder."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 1])))
    n_train, n_test, n_dis = opts.num_train_ids, opts.num_test_ids, opts.num_distractor_ids
    pids = rng.permutation(np.arange(1, n_train + n_test + n_dis + 1))  # interleaved id numbers, as in Market
    groups = {"train": sorted(pids[:n_train].tolist()), "test": sorted(pids[n_train:n_train + n_test].tolist()),
              "distractor": sorted(pids[n_train + n_test:].tolist())}

    apps: dict[int, Appearance] = {}
    for group in ("train", "test", "distractor"):
        earlier: list[int] = []
        for pid in groups[group]:
            arng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 4, pid])))
            if earlier and arng.random() < opts.similar_fraction:
                apps[pid] = similar_appearance(apps[earlier[int(arng.integers(len(earlier)))]], arng)
            else:
                apps[pid] = random_appearance(arng)
            earlier.append(pid)

    kinds_p = np.asarray(opts.occluder_weights, np.float64)
    kinds_p = kinds_p / kinds_p.sum()
    frames = rng.integers(1, 200, size=opts.num_cameras)
    specs: list[ImageSpec] = []

    def add(split: str, pid: int, cams, occluded_p: float) -> None:
        for cam in cams:
            frames[cam] += rng.integers(3, 80)
            occ = str(rng.choice(OCCLUDER_KINDS, p=kinds_p)) if rng.random() < occluded_p else "none"
            specs.append(ImageSpec(len(specs), split, int(pid), int(cam) + 1, int(frames[cam]), occ))

    C = opts.num_cameras
    for pid in groups["train"]:  # at least two cameras per training identity
        first = rng.choice(C, size=2, replace=False)
        add(TRAIN_DIR, pid, np.concatenate([first, rng.integers(0, C, opts.train_images_per_id - 2)]),
            opts.train_occluded)
    for pid in groups["test"]:
        add(QUERY_DIR, pid, rng.choice(C, size=opts.query_images_per_id, replace=False), opts.query_occluded)
        n = opts.gallery_images_per_id  # every camera first, so each query has a cross-camera match
        cams = rng.permutation(C)[:n]
        add(GALLERY_DIR, pid, np.concatenate([cams, rng.integers(0, C, max(0, n - C))]), opts.gallery_occluded)
    for pid in groups["distractor"]:
        add(GALLERY_DIR, pid, rng.integers(0, C, opts.distractor_images_per_id), opts.gallery_occluded)
    return specs, apps, {k: len(v) for k, v in groups.items()}


# ----------------------------------------------------------------------------- writing


def _save(rendered: Rendered, spec: ImageSpec, root: Path, quality: int) -> None:
    Image.fromarray(rendered.image).save(root / spec.split / f"{spec.stem}.jpg", format="JPEG",
                                         quality=quality, subsampling=0, optimize=False)
    Image.fromarray(rendered.labels).save(root / MASK_DIR / spec.split / f"{spec.stem}.png", format="PNG",
                                          compress_level=6)


def _ours(root: Path) -> bool:
    return (root / MANIFEST_NAME).is_file() or (root / _INCOMPLETE_MARKER).exists()


def _clear(root: Path) -> None:
    """Remove what a previous run wrote (only called when the folder is known to be ours)."""
    for name in (*SPLIT_DIRS, MASK_DIR):
        if (root / name).is_dir():
            shutil.rmtree(root / name)
    for name in (MANIFEST_NAME, ANNOTATIONS_NAME):
        if (root / name).is_file():
            (root / name).unlink()


def make_options(num_ids: int | None = None, **options) -> SynthOptions:
    """Validated :class:`SynthOptions`; unknown or out-of-range options raise DatasetError."""
    if num_ids is not None:
        options = {**options, "num_ids": int(num_ids)}
    try:
        opts = SynthOptions(**options)
    except TypeError as exc:
        known = ", ".join(f.name for f in dataclasses.fields(SynthOptions))
        raise DatasetError(f"synthetic dataset: {exc}; known options: {known}") from None
    opts.validate()
    return opts


def generate(out_dir: str | os.PathLike, seed: int = 0, num_ids: int | None = None, *, overwrite: bool = False,
             **options) -> SynthSummary:
    """Write the synthetic dataset to ``out_dir`` and return its summary.

    ``num_ids`` and ``options`` (fields of :class:`SynthOptions`) shape the dataset. An
    existing synthetic dataset in ``out_dir`` is replaced only when ``overwrite``; a
    non-empty folder without a synthetic manifest (another dataset, say) is never touched.
    """
    opts = make_options(num_ids, **options)
    root = Path(out_dir)
    state = dataset_status(root)
    if state == "foreign":
        raise DatasetError(f"{root} is not empty and holds no synthetic dataset (no {MANIFEST_NAME}); "
                           "choose a new or empty output folder")
    if state in ("complete", "incomplete") and not overwrite:
        raise DatasetError(f"{root} already holds a synthetic dataset ({state}); "
                           "pass --force (overwrite=True) to replace it")
    start = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    (root / _INCOMPLETE_MARKER).write_text("generation in progress or interrupted\n")
    _clear(root)
    for split in SPLIT_DIRS:
        (root / split).mkdir()
        (root / MASK_DIR / split).mkdir(parents=True)

    specs, apps, identities = _plan(seed, opts)
    cams = make_cameras(seed, opts)
    occlusion: dict[str, dict[str, int]] = {s: {} for s in SPLIT_DIRS}
    rows = []
    for spec in specs:
        rendered = render_image(spec, apps[spec.pid], cams[spec.camid - 1], seed, opts)
        _save(rendered, spec, root, opts.jpeg_quality)
        occlusion[spec.split][spec.occlusion] = occlusion[spec.split].get(spec.occlusion, 0) + 1
        rows.append((spec.split, f"{spec.stem}.jpg", spec.pid, spec.camid, rendered.view, spec.occlusion,
                     f"{rendered.visible:.3f}"))
    with open(root / ANNOTATIONS_NAME, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(("split", "image", "pid", "camid", "view", "occlusion", "visible"))
        writer.writerows(rows)

    counts = {s: sum(1 for sp in specs if sp.split == s) for s in SPLIT_DIRS}
    summary = SynthSummary(str(root), int(seed), GENERATOR_VERSION, opts.to_dict(), counts, identities,
                           {s: dict(sorted(v.items())) for s, v in occlusion.items()})
    with open(root / MANIFEST_NAME, "w", encoding="utf-8") as fh:
        json.dump(summary.to_dict(), fh, indent=1, sort_keys=True)
        fh.write("\n")
    (root / _INCOMPLETE_MARKER).unlink()
    summary.seconds = time.perf_counter() - start
    log.info("synthetic dataset: %d images in %s (%.1f s)", len(specs), root, summary.seconds)
    return summary


def read_manifest(dataset_dir: str | os.PathLike) -> SynthSummary | None:
    """The summary stored by :func:`generate`, or None when there is no readable manifest."""
    root = Path(dataset_dir)
    try:
        with open(root / MANIFEST_NAME, encoding="utf-8") as fh:
            data = json.load(fh)
        if data.get("format") != _FORMAT:
            return None
        return SynthSummary(str(root), int(data["seed"]), int(data["version"]), dict(data["options"]),
                            {k: int(v) for k, v in data["counts"].items()}, dict(data["identities"]),
                            dict(data["occlusion"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def verify(dataset_dir: str | os.PathLike) -> list[str]:
    """Problems found in a generated dataset (empty when it is complete)."""
    root = Path(dataset_dir)
    if (root / _INCOMPLETE_MARKER).exists():
        return ["generation did not finish"]
    summary = read_manifest(root)
    if summary is None:
        return [f"no readable {MANIFEST_NAME}"]
    problems = []
    for split in SPLIT_DIRS:
        expected = summary.counts.get(split)
        for folder, ext in ((root / split, ".jpg"), (root / MASK_DIR / split, ".png")):
            found = sum(1 for e in os.scandir(folder) if e.name.endswith(ext)) if folder.is_dir() else 0
            if found != expected:
                problems.append(f"{folder} has {found} {ext} files, the manifest says {expected}")
    return problems


def dataset_status(dataset_dir: str | os.PathLike) -> str:
    """'missing', 'complete', 'incomplete' (ours, unfinished or damaged) or 'foreign'."""
    root = Path(dataset_dir)
    if _ours(root):
        return "incomplete" if verify(root) else "complete"
    if root.is_dir() and any(os.scandir(root)):
        return "foreign"
    if root.exists() and not root.is_dir():
        return "foreign"
    return "missing"


def regenerate_command(dataset_dir: str | os.PathLike, seed: int) -> str:
    """The command that replaces the dataset in ``dataset_dir`` with the current generator's."""
    return f"mbf synth --out {dataset_dir} --seed {seed} --force"


def ensure_dataset(dataset_dir: str | os.PathLike, seed: int = 0, num_ids: int | None = None,
                   **options) -> SynthSummary:
    """Generate the dataset in ``dataset_dir`` unless a complete one is already there.

    A complete synthetic dataset is used as it is, whatever seed and options it was made
    with (they are logged), so a dataset made by ``mbf synth`` with other options is kept;
    an incomplete one (interrupted, files missing) is generated again; a folder holding
    another dataset's split folders raises :class:`DatasetError`.
    """
    root = Path(dataset_dir)
    state = dataset_status(root)
    if state == "complete":
        summary = read_manifest(root)
        if summary.version != GENERATOR_VERSION:
            log.warning("%s was made by synthetic generator version %d (this is %d); using it as it is "
                        "(make the current one with: %s)", root, summary.version, GENERATOR_VERSION,
                        regenerate_command(root, summary.seed))
        log.info("synthetic dataset %s: seed %d, %s", root, summary.seed, summary.counts)
        return summary
    if state == "incomplete":
        log.warning("synthetic dataset %s is incomplete (%s); generating it again", root, "; ".join(verify(root)))
        return generate(root, seed, num_ids, overwrite=True, **options)
    if state == "foreign":
        raise DatasetError(f"{root} is not empty but holds no synthetic dataset (no {MANIFEST_NAME}); "
                           "move its content away or point DATASETS.ROOT_DIR elsewhere")
    log.info("synthetic dataset not found in %s; generating it (seed %d)", root, seed)
    return generate(root, seed, num_ids, **options)
