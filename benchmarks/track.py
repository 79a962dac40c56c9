"""Tracking on generated occluded clips: what occluded re-ID buys a tracker (docs/BENCHMARKS.md).

    python benchmarks/track.py --mbf W --mbf-config configs/Synthetic/mbf_tiny.yml \
        --baseline W2 --baseline-config configs/Synthetic/baseline_tiny.yml \
        [--seeds 0 1 2] [--frames 150] [--trackers botsort] [--json F] [--table F]
    python benchmarks/track.py --tiny --json F       # random tiny models, a short clip: checks the script

Clips (:func:`make_clip`): people of the synthetic generator (``mbf.synthetic``: identities kept
apart region by region, drawn as its pedestrians in the look of its first camera) walk across a
640 x 360 street scene in lanes at different depths, at their own speeds, pausing, changing speed
and turning back at random; nearer people hide farther ones when they cross, and poles, a bush
and a kiosk in front hide anyone behind them. Ground truth: every person at least
``MIN_VISIBLE`` visible, with the box of their whole body inside the frame (hidden parts
included): the body's rows, ``BOX_ASPECT`` times as wide, around its centre (a detector's box of a
walker in side view, whose body alone is 0.1-0.35 times as wide as tall). Detections: the ground-truth boxes with corner jitter (3% of the height), a missed
person now and then (5%), scores 0.6-1.0; nothing is detected under ``MIN_VISIBLE``.

Each tracker runs on each clip without re-ID (where it has such a mode), with the global
baseline and with MBF as its appearance model: each model is exported to ONNX (``mbf export``
with the default options) and run by onnxruntime on one thread through
:class:`mbf.integrations.boxmot.BoxMOTReID` (camera 0, the look the clips are drawn in), the
tracker's defaults otherwise (BoT-SORT: camera-motion compensation off, the camera is static).
BoT-SORT runs twice with each model: with its default ``appearance_thresh`` (0.25: an
appearance match counts only above cosine 0.75) and with the threshold calibrated for the
model on a clip of its own (seed ``CALIBRATION_SEED``, never scored): the cosine that 1% of
pairs of different people exceed there (``calibrate``), so each model accepts as many
same-person pairs as its descriptor allows at the same rate of false matches.
Scores from motmetrics (IDF1, ID switches, MOTA; IoU >= 0.5 to match; the IoU distances are
computed here: motmetrics 1.4.0's ``iou_matrix`` calls ``np.asfarray``, gone from NumPy 2).
Re-ID time: the wall time of the tracker's ``get_features`` calls (cropping, preprocessing,
the network and normalisation), per frame and per box, on one thread (torch's and
onnxruntime's); ``per box at >= 8`` counts only frames with at least 8 boxes.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

REPO = Path(__file__).resolve().parents[1]
MIN_VISIBLE = 0.35  # share of a person's pixels in view for ground truth and detections
MISS = 0.05  # chance of a detector missing a visible person in a frame
JITTER = 0.03  # std of each box corner, as a fraction of the box height
BOX_ASPECT = 0.41  # width / height of a box: the shape of pedestrian detections (MOT17's boxes average ~0.41)
TRACKERS = ("botsort", "deepocsort", "strongsort")
REID_MODELS = ("none", "baseline", "mbf")
CALIBRATION_SEED = 1000  # the clip the appearance thresholds are calibrated on (never scored)
FALSE_MATCHES = 0.01  # share of different-person pairs above the calibrated cosine


# ---------------------------------------------------------------------------- clips
@dataclass
class Walker:
    app: object
    x: float
    foot_y: float
    direction: int
    speed: float
    phase: float
    pause: int = 0


@dataclass
class Clip:
    seed: int
    frames: list = field(default_factory=list)  # uint8 H x W x 3, BGR (as a video reader gives them)
    truth: list = field(default_factory=list)  # per frame: (ids int [M], boxes float [M, 4])
    detections: list = field(default_factory=list)  # per frame: float32 [N, 6] x1 y1 x2 y2 score class
    visibility: list = field(default_factory=list)  # per frame: visible share of every ground-truth person


def _walkers(rng: np.random.Generator, people: int, height: int, width: int) -> list[Walker]:
    from mbf.synthetic import IdentityPool

    pool = IdentityPool()
    lanes = np.linspace(0.58, 0.97, people) * height  # depths spread over the pavement, shuffled below
    rng.shuffle(lanes)
    return [Walker(pool.draw(rng), float(rng.uniform(-0.05, 1.05) * width), float(lanes[k] + rng.uniform(-4, 4)),
                   int(rng.choice([-1, 1])), float(rng.uniform(1.5, 4.0)), float(rng.uniform(0, 2 * math.pi)))
            for k in range(people)]


def _step(w: Walker, rng: np.random.Generator, width: int) -> None:
    """One frame of walking: pauses, speed changes and turns at random, turning back at the frame's edges."""
    if w.pause:
        w.pause -= 1
        return
    u = rng.random()
    if u < 0.015:
        w.pause = int(rng.integers(5, 25))
    elif u < 0.035:
        w.speed = float(rng.uniform(1.0, 4.5))
    elif u < 0.045:
        w.direction = -w.direction
    w.x += w.direction * w.speed
    w.phase += w.speed * 0.12
    if not -0.08 * width < w.x < 1.08 * width:
        w.direction = 1 if w.x < 0 else -1


def _objects(rng: np.random.Generator, height: int, width: int) -> list:
    """Static occluders in front of everyone: two poles, a bush and a kiosk, in clothing colours."""
    from mbf.synthetic.appearance import _RGB
    from mbf.synthetic.canvas import _ellipse

    def pole(x):
        return lambda Y, X: np.abs(X - x) <= 6, np.array([110, 112, 118], np.float32)

    def bush(x):
        return (lambda Y, X: _ellipse(Y, X, height * 0.96, x, height * 0.2, width * 0.09)
                | _ellipse(Y, X, height * 0.9, x + width * 0.05, height * 0.14, width * 0.06)), \
            np.array([48, 104, 44], np.float32)

    def kiosk(x):
        colour = _RGB[rng.integers(len(_RGB))]
        return lambda Y, X: (np.abs(X - x) <= width * 0.07) & (Y >= height * 0.5), colour

    xs = rng.permutation(np.linspace(0.15, 0.85, 4)) * width + rng.uniform(-20, 20, 4)
    return [pole(xs[0]), pole(xs[1]), bush(xs[2]), kiosk(xs[3])]


def make_clip(seed: int, frames: int = 150, height: int = 360, width: int = 640, people: int = 12) -> Clip:
    """A generated clip of ``people`` pedestrians crossing and hiding each other (module docstring)."""
    from mbf.synthetic import Pose, draw_person, make_cameras
    from mbf.synthetic.canvas import Canvas
    from mbf.synthetic.options import SynthOptions

    rng = np.random.default_rng([seed, 2024])
    cam = make_cameras(seed, SynthOptions(height=height, width=width, num_cameras=2))[0]
    background = cam.texture[:height, :width].astype(np.float32)
    walkers = _walkers(rng, people, height, width)
    objects = _objects(rng, height, width)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    occluder = np.zeros((height, width), bool)
    for mask, _ in objects:
        occluder |= mask(yy, xx)
    clip = Clip(seed)
    for _ in range(frames):
        img = background.copy()
        owner = np.full((height, width), -1, np.int32)
        covers, boxes = {}, {}
        for k in sorted(range(people), key=lambda k: walkers[k].foot_y):  # far ones first
            w = walkers[k]
            size = w.foot_y * 0.55  # nearer (lower) people are taller
            x0, x1 = int(max(w.x - 0.4 * size, 0)), int(min(w.x + 0.4 * size, width))
            y0, y1 = int(max(w.foot_y - size - 2, 0)), int(min(w.foot_y + 0.06 * size, height))
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            canvas = Canvas(img[y0:y1, x0:x1])
            canvas.Y, canvas.X = canvas.Y + y0, canvas.X + x0
            pose = Pose(foot_y=w.foot_y, centre_x=w.x, height=size, view="side", facing=w.direction,
                        phase=w.phase, lean=0.0)
            cover = draw_person(canvas, w.app, pose)
            if not cover.any():
                continue
            img[y0:y1, x0:x1] = canvas.img
            owner[y0:y1, x0:x1][cover] = k
            rows, cols = np.nonzero(cover)  # the body's rows; the width of a pedestrian detector's box
            half = BOX_ASPECT * (rows.max() + 1 - rows.min()) / 2
            left, right = max(w.x - half, 0), min(w.x + half, width)
            if right - left >= 4:  # not a sliver at the frame's edge
                boxes[k] = (left, y0 + rows.min(), right, y0 + rows.max() + 1)
            covers[k] = int(cover.sum())
        for mask, colour in objects:
            m = mask(yy, xx)
            img[m] = colour
        owner[occluder] = -1
        visible = np.bincount(owner[owner >= 0], minlength=people)
        ids, gt, vis, dets = [], [], [], []
        for k, box in sorted(boxes.items()):
            share = visible[k] / covers[k]
            if share < MIN_VISIBLE:
                continue
            ids.append(k)
            gt.append(box)
            vis.append(share)
            if rng.random() < MISS:
                continue
            h = box[3] - box[1]
            noisy = np.asarray(box, np.float64) + rng.normal(0, JITTER * h, 4)
            noisy[0::2] = np.clip(noisy[0::2], 0, width - 1)
            noisy[1::2] = np.clip(noisy[1::2], 0, height - 1)
            if noisy[2] - noisy[0] >= 4 and noisy[3] - noisy[1] >= 4:
                dets.append([*noisy, rng.uniform(0.6, 1.0), 0])
        light = 1 + 0.7 * (cam.gain * rng.uniform(0.97, 1.03) - 1)
        pil = Image.fromarray(np.clip(img * light, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(cam.blur))
        frame = np.clip(np.asarray(pil, np.float32) + rng.normal(0, cam.noise, (height, width, 3)) + 0.5, 0, 255)
        clip.frames.append(np.ascontiguousarray(frame.astype(np.uint8)[..., ::-1]))  # BGR, as OpenCV reads video
        clip.truth.append((np.asarray(ids, np.int64), np.asarray(gt, np.float64).reshape(-1, 4)))
        clip.visibility.append(np.asarray(vis))
        clip.detections.append(np.asarray(dets, np.float32).reshape(-1, 6))
        for w in walkers:
            _step(w, rng, width)
    return clip


# ---------------------------------------------------------------------------- scoring
def iou_distances(truth: np.ndarray, hyps: np.ndarray, min_iou: float = 0.5) -> np.ndarray:
    """1 - IoU of xyxy boxes, NaN (no match) where the IoU is under ``min_iou`` (motmetrics' convention)."""
    if not len(truth) or not len(hyps):
        return np.empty((len(truth), len(hyps)))
    lt = np.maximum(truth[:, None, :2], hyps[None, :, :2])
    rb = np.minimum(truth[:, None, 2:], hyps[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # noqa: E731
    iou = inter / (area(truth)[:, None] + area(hyps)[None, :] - inter)
    return np.where(iou >= min_iou, 1 - iou, np.nan)


def score(clip: Clip, hypotheses: list) -> dict:
    """IDF1, ID switches, MOTA (and their parts) of per-frame (ids, boxes) hypotheses, by motmetrics."""
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=True)
    for (gt_ids, gt_boxes), (ids, boxes) in zip(clip.truth, hypotheses):
        acc.update(gt_ids.tolist(), ids.tolist(), iou_distances(gt_boxes, boxes))
    names = ["idf1", "num_switches", "mota", "idp", "idr", "num_false_positives", "num_misses", "num_objects",
             "num_unique_objects"]
    row = mm.metrics.create().compute(acc, metrics=names, name="clip").iloc[0]
    return {"idf1": float(row["idf1"]), "id_switches": int(row["num_switches"]), "mota": float(row["mota"]),
            "idp": float(row["idp"]), "idr": float(row["idr"]), "false_positives": int(row["num_false_positives"]),
            "misses": int(row["num_misses"]), "truth_boxes": int(row["num_objects"]),
            "people": int(row["num_unique_objects"])}


# ---------------------------------------------------------------------------- trackers
class TimedReID:
    """A BoxMOT ``reid_model`` that records the wall time and the box count of each ``get_features`` call."""

    def __init__(self, reid):
        self.reid, self.calls = reid, []

    def __getattr__(self, name):
        return getattr(self.reid, name)

    def get_features(self, xyxys, img):
        start = time.perf_counter()
        out = self.reid.get_features(xyxys, img)
        self.calls.append((len(xyxys), time.perf_counter() - start))
        return out


def calibrate(reid, clip: Clip, every: int = 5) -> dict:
    """The appearance threshold (a cosine distance) of ``reid`` on ``clip``: 1 - the cosine that
    FALSE_MATCHES of the pairs of different people's boxes exceed (ground-truth boxes of every
    ``every``-th frame), and the share of same-person pairs (in different frames) it accepts."""
    feats, ids, frames = [], [], []
    for t in range(0, len(clip.frames), every):
        gt_ids, boxes = clip.truth[t]
        if len(boxes):
            feats.append(reid.get_features(boxes, clip.frames[t]))
            ids.append(gt_ids)
            frames.append(np.full(len(gt_ids), t))
    f = np.concatenate(feats)
    f = f / np.linalg.norm(f, axis=1, keepdims=True)
    ids, frames = np.concatenate(ids), np.concatenate(frames)
    cos = f @ f.T
    different = ids[:, None] != ids[None]
    same = (ids[:, None] == ids[None]) & (frames[:, None] != frames[None])
    cut = float(np.quantile(cos[different], 1 - FALSE_MATCHES))
    return {"appearance_thresh": 1 - cut, "same_person_accepted": float((cos[same] > cut).mean()),
            "same_person_accepted_at_default": float((cos[same] > 0.75).mean()),
            "different_accepted_at_default": float((cos[different] > 0.75).mean())}


def make_tracker(name: str, reid, appearance_thresh: float | None = None):
    """A BoxMOT tracker with its defaults, ``reid`` as its appearance model (None: without re-ID);
    BoT-SORT's ``appearance_thresh`` when one is given."""
    import logging

    import boxmot

    logging.getLogger("boxmot").setLevel(logging.WARNING)  # its per-tracker settings banner
    if name == "botsort":
        if reid is None:
            return boxmot.BotSort(use_embeddings=False, use_cmc=False)
        extra = {} if appearance_thresh is None else {"appearance_thresh": appearance_thresh}
        return boxmot.BotSort(reid_model=reid, use_cmc=False, **extra)
    if name == "deepocsort":
        return boxmot.DeepOcSort(use_embeddings=False) if reid is None else boxmot.DeepOcSort(reid_model=reid)
    if name == "strongsort":
        if reid is None:
            raise ValueError("StrongSORT has no mode without re-ID")
        return boxmot.StrongSort(reid_model=reid)
    raise ValueError(f"unknown tracker {name!r}; one of {', '.join(TRACKERS)}")


def run(clip: Clip, tracker_name: str, reid, appearance_thresh: float | None = None) -> dict:
    """Track the clip; its scores and the re-ID time."""
    timed = TimedReID(reid) if reid is not None else None
    tracker = make_tracker(tracker_name, timed, appearance_thresh)
    hypotheses = []
    start = time.perf_counter()
    for frame, dets in zip(clip.frames, clip.detections):
        out = np.asarray(tracker.update(dets, frame))
        hypotheses.append((out[:, 4].astype(np.int64), out[:, :4].astype(np.float64)) if len(out)
                          else (np.empty(0, np.int64), np.empty((0, 4))))
    result = score(clip, hypotheses)
    result["seconds"] = time.perf_counter() - start
    calls = timed.calls if timed is not None else []
    boxes = sum(n for n, _ in calls)
    busy = [(n, s) for n, s in calls if n >= 8]
    result.update(reid_frames=len(calls), reid_boxes=boxes,
                  reid_ms_per_frame=1e3 * sum(s for _, s in calls) / len(clip.frames) if calls else 0.0,
                  reid_ms_per_box=1e3 * sum(s for _, s in calls) / boxes if boxes else 0.0,
                  reid_ms_per_box_at_8=1e3 * sum(s for _, s in busy) / sum(n for n, _ in busy) if busy else None,
                  frames_at_8=len(busy))
    return result


# ---------------------------------------------------------------------------- models
def onnx_model(weights: str, config: str, folder: Path, name: str, opts=()) -> Path:
    """``weights`` exported as ``mbf export`` writes it (an .onnx file is used as it is)."""
    if weights.lower().endswith(".onnx"):
        return Path(weights)
    from mbf.config import load_config
    from mbf.retrieval.embedder import build_checkpoint_model
    from mbf.retrieval.export import export_onnx
    from mbf.retrieval.metadata import ModelCard

    cfg = load_config(config, list(opts) + ["MODEL.DEVICE", "cpu"])
    model = build_checkpoint_model(cfg, weights).eval()
    return export_onnx(model, ModelCard.from_config(cfg, model), folder / f"{name}.onnx").path


def tiny_models(folder: Path) -> dict:
    """Two random tiny models of the demo's configs (the script's check: the numbers mean nothing)."""
    from mbf.config import load_config
    from mbf.modeling import build_model

    small = ["MODEL.DEVICE", "cpu", "MODEL.VIT_EMBED_DIM", "32", "MODEL.VIT_DEPTH", "2", "MODEL.VIT_NUM_HEADS", "2",
             "MODEL.DECODER_FFN_DIM", "32", "INPUT.SIZE_TRAIN", "[64, 32]", "INPUT.SIZE_TEST", "[64, 32]"]
    out = {}
    for name, config in (("baseline", "baseline_tiny.yml"), ("mbf", "mbf_tiny.yml")):
        config = str(REPO / "configs" / "Synthetic" / config)
        torch.manual_seed(0)
        model = build_model(load_config(config, small), num_classes=5, camera_num=4, view_num=1, pretrained=False)
        torch.save(model.state_dict(), folder / f"{name}.pth")
        out[name] = onnx_model(str(folder / f"{name}.pth"), config, folder, name, small)
    return out


# ---------------------------------------------------------------------------- report
def table(results: dict, seeds: list[int]) -> str:
    """The Markdown rows of docs/BENCHMARKS.md: per tracker and re-ID model, each seed and the mean."""
    head = "| tracker | re-ID | " + " | ".join(f"seed {s}: IDF1 / IDSW / MOTA" for s in seeds) + \
        " | mean IDF1 | mean IDSW | mean MOTA | re-ID ms / frame | ms / box (>= 8 boxes) |"
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for key, per_seed in results.items():
        tracker, reid = key.split("/")
        cells = [f"{r['idf1'] * 100:.1f} / {r['id_switches']} / {r['mota'] * 100:.1f}" for r in per_seed]
        mean = lambda k: statistics.mean(r[k] for r in per_seed)  # noqa: E731
        at8 = [r["reid_ms_per_box_at_8"] for r in per_seed if r["reid_ms_per_box_at_8"] is not None]
        timing = "- | - |" if reid == "none" else \
            f"{mean('reid_ms_per_frame'):.1f} | " + (f"{statistics.mean(at8):.2f} |" if at8 else "- |")
        lines.append(f"| {tracker} | {reid} | " + " | ".join(cells) +
                     f" | {mean('idf1') * 100:.1f} | {mean('id_switches'):.1f} | {mean('mota') * 100:.1f} | " + timing)
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mbf", help="MBF weights (.pth with --mbf-config, or an mbf export .onnx)")
    p.add_argument("--mbf-config", default=str(REPO / "configs" / "Synthetic" / "mbf_tiny.yml"))
    p.add_argument("--baseline", help="global-baseline weights (.pth with --baseline-config, or .onnx)")
    p.add_argument("--baseline-config", default=str(REPO / "configs" / "Synthetic" / "baseline_tiny.yml"))
    p.add_argument("--tiny", action="store_true", help="random tiny models and a short small clip (a check)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--frames", type=int, default=150)
    p.add_argument("--people", type=int, default=12)
    p.add_argument("--trackers", default="botsort", help=f"comma-separated, of {', '.join(TRACKERS)}")
    p.add_argument("--json", default="", help="write the results here")
    p.add_argument("--table", default="", help="write the Markdown table here")
    args = p.parse_args(argv)
    if not args.tiny and not (args.mbf and args.baseline):
        p.error("give --mbf and --baseline (the demo's trained models), or --tiny")
    torch.set_num_threads(1)  # re-ID on one core: torch's preprocessing, onnxruntime's session (threads=1)
    from mbf.integrations.boxmot import BoxMOTReID

    trackers = [t.strip() for t in args.trackers.split(",") if t.strip()]
    size = dict(frames=8, height=180, width=320, people=6) if args.tiny else \
        dict(frames=args.frames, height=360, width=640, people=args.people)
    with tempfile.TemporaryDirectory() as tmp:
        if args.tiny:
            files = tiny_models(Path(tmp))
        else:
            files = {"baseline": onnx_model(args.baseline, args.baseline_config, Path(tmp), "baseline"),
                     "mbf": onnx_model(args.mbf, args.mbf_config, Path(tmp), "mbf")}
        reids = {name: BoxMOTReID.from_onnx(path, camera=0, threads=1) for name, path in files.items()}
        calibration_clip = make_clip(CALIBRATION_SEED, **size)
        calibration = {name: calibrate(reid, calibration_clip) for name, reid in reids.items()}
        for name, c in calibration.items():
            print(f"{name}: calibrated appearance_thresh {c['appearance_thresh']:.3f} (accepts "
                  f"{c['same_person_accepted'] * 100:.0f}% of same-person pairs; the default 0.25 accepts "
                  f"{c['same_person_accepted_at_default'] * 100:.0f}%)", flush=True)
        variants = [(reid, None) for reid in REID_MODELS] + [(reid, "calibrated") for reid in REID_MODELS[1:]]
        results: dict = {}
        clips = []
        for seed in args.seeds:
            t = time.perf_counter()
            clip = make_clip(seed, **size)
            clips.append({"seed": seed, "frames": len(clip.frames), "people": size["people"],
                          "detections_per_frame": float(np.mean([len(d) for d in clip.detections])),
                          "truth_per_frame": float(np.mean([len(i) for i, _ in clip.truth])),
                          "generate_s": time.perf_counter() - t})
            for tracker in trackers:
                for reid, thresh in variants:
                    if (reid == "none" and tracker == "strongsort") or (thresh and tracker != "botsort"):
                        continue
                    value = calibration[reid]["appearance_thresh"] if thresh else None
                    r = run(clip, tracker, reids.get(reid), value)
                    label = reid + (", calibrated" if thresh else "")
                    results.setdefault(f"{tracker}/{label}", []).append({"seed": seed, "appearance_thresh": value, **r})
                    print(f"seed {seed} {tracker:>10} re-ID {label:>20}: IDF1 {r['idf1'] * 100:5.1f}  IDSW "
                          f"{r['id_switches']:3d}  MOTA {r['mota'] * 100:5.1f}  re-ID {r['reid_ms_per_frame']:.1f} ms/frame",
                          flush=True)
    report = {"clips": clips, "results": results, "calibration": calibration,
              "models": {"mbf": args.mbf, "baseline": args.baseline} if not args.tiny else "tiny random models",
              "settings": {"min_visible": MIN_VISIBLE, "miss": MISS, "jitter": JITTER, "box_aspect": BOX_ASPECT,
                           "calibration_seed": CALIBRATION_SEED,
                           "false_matches": FALSE_MATCHES, **size},
              "machine": f"{os.cpu_count()} CPUs, torch {torch.__version__}"}
    text = table(results, args.seeds)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    if args.table:
        Path(args.table).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    raise SystemExit(main())
