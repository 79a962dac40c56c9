"""Pedestrians: pose and body rendering of an identity's appearance."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .appearance import Appearance
from .canvas import Canvas, _capsule, _ellipse, _polygon, _taper
from .options import BACKGROUND, HEAD, LOWER, SHOES, UPPER
from .scenes import Camera


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
        paint(_ellipse(Y, X, ankle_y + 0.025 * H, fx, 0.036 * H, (0.06 if side else 0.046) * H), app.shoes, SHOES)
    # ---- shorts / skirt over the legs
    if app.lower_style == "shorts":
        paint(_taper(Y, X, hip_y - 0.02 * H, hip_y + 0.16 * H, cx, waist_hw * 1.02, cx, waist_hw * 1.12),
              app.lower, LOWER)
    elif app.lower_style == "skirt":
        length = app.skirt_length * H  # identity-specific length
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
        sleeve = app.upper2 if app.pattern == "sleeves" else app.upper
        paint(whole & _capsule(Y, X, (sy, sx), (ey, ex), arm_r * 1.05), sleeve * dim, UPPER)
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
    # coarse layouts, seen from every side: a chest band, a two-tone split at the waist, sleeves
    # with shoulders (a raglan yoke), a broad centre panel
    if app.pattern == "band":
        alt = (Y >= shoulder_y + 0.08 * H) & (Y <= shoulder_y + 0.17 * H)
    elif app.pattern == "split":
        alt = Y >= shoulder_y + 0.2 * H
    elif app.pattern == "sleeves":
        alt = Y <= shoulder_y + 0.045 * H
    elif app.pattern == "centre":
        alt = np.abs(X - cx) <= 0.055 * H * (0.7 if side else 1.0)
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
            paint(_taper(Y, X, shoulder_y, shoulder_y + 0.2 * H, x0, 0.02 * H, x0, 0.02 * H), app.bag_colour, UPPER)
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
    if app.hat is not None and app.hat_style == "beanie":  # a knitted hat down to the brow
        cap = _ellipse(Y, X, head_cy - 0.25 * head_ry, head_cx, head_ry * 0.95, head_rx * 1.15) & (Y <= head_cy - 0.1 * head_ry)
        paint(cap, app.hat, HEAD)
    elif app.hat is not None:  # a cap with a brim
        cap = _ellipse(Y, X, head_cy - 0.3 * head_ry, head_cx, head_ry * 0.85, head_rx * 1.12) & (Y <= head_cy - 0.25 * head_ry)
        brim_x = head_cx + (pose.facing * head_rx * 0.9 if side else 0.0)
        cap |= _ellipse(Y, X, head_cy - 0.28 * head_ry, brim_x, 0.022 * H, head_rx * (0.9 if side else 1.25))
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

