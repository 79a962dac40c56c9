"""Pedestrians: identity appearance (clothing, hair, accessories, shape), pose and body rendering."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .canvas import Canvas, _capsule, _ellipse, _polygon, _taper
from .options import BACKGROUND, HEAD, LOWER, SHOES, UPPER
from .scenes import Camera

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

