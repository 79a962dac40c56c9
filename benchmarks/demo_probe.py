"""How well the visible part of a synthetic query identifies the person, without any learning.

    python benchmarks/demo_probe.py datasets/Synthetic_Occluded [more dataset folders ...]

An oracle probe of the generated data, not of a model: every image is described by the mean
colour of each ground-truth part label it shows (head, upper body split into its top 40% and
the rest, lower body, shoes); a query's distance to a gallery image is the mean colour
distance over the parts both show; R1 counts the nearest cross-camera gallery image (the
Market protocol's filter). It reads the part labels exactly, so it measures what the visible
pixels hold, not what a model learns to see. Prints one markdown row per dataset: R1 over all
occluded queries and per occluder kind.
"""
from __future__ import annotations

import argparse
import csv
import os

import numpy as np
from PIL import Image

PARTS = 5  # head, upper (top), upper (rest), lower, shoes


def describe(root: str, row: dict) -> tuple[np.ndarray, np.ndarray]:
    """Mean colour per part [PARTS, 3] and which parts the image shows [PARTS]."""
    img = np.asarray(Image.open(os.path.join(root, row["split"], row["image"])).convert("RGB"), np.float32)
    lbl = np.asarray(Image.open(os.path.join(root, "masks", row["split"], row["image"][:-4] + ".png")))
    upper = lbl == 2
    rows = np.nonzero(upper.any(axis=1))[0]
    cut = rows[0] + 0.4 * (rows[-1] - rows[0]) if len(rows) else 0
    top = upper & (np.arange(lbl.shape[0])[:, None] < cut)
    regions = [lbl == 1, top, upper & ~top, lbl == 3, lbl == 4]
    shown = np.array([r.sum() >= 4 for r in regions])
    means = np.stack([img[r].mean(axis=0) if ok else np.zeros(3, np.float32) for r, ok in zip(regions, shown)])
    return means, shown


def probe(root: str) -> dict[str, tuple[float, int]]:
    """R1 (percent) and count of the occluded queries, overall ("all") and per occluder kind."""
    with open(os.path.join(root, "annotations.csv"), newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))

    def load(split):
        chosen = [r for r in rows if r["split"] == split]
        described = [describe(root, r) for r in chosen]
        return (np.stack([d[0] for d in described]), np.stack([d[1] for d in described]),
                np.array([int(r["pid"]) for r in chosen]), np.array([int(r["camid"]) for r in chosen]),
                np.array([r["occlusion"] for r in chosen]))

    qf, qm, qp, qc, kinds = load("query")
    gf, gm, gp, gc, _ = load("bounding_box_test")
    both = qm[:, None] & gm[None]  # [Q, G, PARTS]
    dist = np.zeros(both.shape[:2])
    for k in range(PARTS):  # one part at a time keeps memory at Q x G
        dist += np.linalg.norm(qf[:, None, k] - gf[None, :, k], axis=-1) * both[..., k]
    shared = both.sum(axis=-1)
    dist = np.where(shared > 0, dist / np.maximum(shared, 1), np.inf)
    dist[(qp[:, None] == gp[None]) & (qc[:, None] == gc[None])] = np.inf  # same identity, same camera
    hit = gp[np.argmin(dist, axis=1)] == qp
    out = {"all": (100.0 * hit.mean(), len(hit))}
    for kind in sorted(set(kinds)):
        sel = kinds == kind
        out[kind] = (100.0 * hit[sel].mean(), int(sel.sum()))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("datasets", nargs="+", help="synthetic dataset folders (with annotations.csv and masks/)")
    args = ap.parse_args(argv)
    results = {root: probe(root) for root in args.datasets}
    kinds = sorted({k for r in results.values() for k in r if k != "all"})
    print("| dataset | all occluded | " + " | ".join(kinds) + " |")
    print("| --- | --- |" + " --- |" * len(kinds))
    for root, res in results.items():
        cells = [f"{res[k][0]:.1f} ({res[k][1]})" if k in res else "" for k in ["all", *kinds]]
        print(f"| {root} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
