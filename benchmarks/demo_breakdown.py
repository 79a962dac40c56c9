"""Where a model trained on the synthetic demo succeeds and fails (numbers for docs/DEMO.md).

    python benchmarks/demo_breakdown.py --config_file configs/Synthetic/mbf_tiny.yml \
        --weights logs/synthetic_mbf_tiny/transformer_50.pth [KEY VALUE ...]

Prints one markdown table: R1 / mAP on the occluded queries, split by the occluder the
generator drew (annotations.csv); on holistic queries of the same unseen identities (each
gallery image against the rest of the gallery); on the training identities (each training
image against the other training images); and, for MBF's 9-part descriptor, on its global,
body-part and recovered slices alone. Distances and ranking are the evaluator's (cross-camera
matches only, as in the Market protocol).

With ``--fills`` it also regenerates the dataset (same seed and options, in a temporary folder)
twice: once with every occluder painted with the background behind it (the same body pixels
hidden, nothing left to mistake for the person) and once with the occluders left out (the
holistic version of each query), and scores those queries against the same gallery features.
The three columns split what an occluder costs into hidden information and distraction.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import sys
import tempfile

import numpy as np
import torch


def evaluate(cfg, q, g, q_rows=None, dims=None) -> tuple[float, float, int]:
    from mbf.evaluation import Evaluator

    rows = np.arange(len(q.pids)) if q_rows is None else np.asarray(q_rows)
    qf, gf = q.feats[rows], g.feats
    if dims is not None:
        qf, gf = qf[:, dims], gf[:, dims]
    evaluator = Evaluator.from_config(cfg, num_query=len(rows))
    evaluator.update(qf, q.pids[rows], q.camids[rows])
    evaluator.update(gf, g.pids, g.camids)
    result = evaluator.compute()
    return result.rank(1), float(result.mAP), len(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config_file", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--fills", action="store_true",
                    help="also score the queries with occluders painted as background / left out "
                         "(regenerates the dataset twice in a temporary folder)")
    ap.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from mbf.config import load_config
    from mbf.data import build_test_loader
    from mbf.synthetic import ANNOTATIONS_NAME, DATASET_DIR_NAME
    from mbf.data.build import load_dataset
    from mbf.engine.evaluation import extract_features
    from mbf.modeling import build_model

    cfg = load_config(args.config_file, args.opts)
    if cfg.DATASETS.NAMES != "synthetic_occ":
        sys.exit(f"{args.config_file}: DATASETS.NAMES must be synthetic_occ, got {cfg.DATASETS.NAMES}")
    dataset = load_dataset(cfg, verbose=False)
    model = build_model(cfg, dataset.num_train_pids, dataset.num_train_cams, dataset.num_train_vids, pretrained=False)
    model.load_param(args.weights)
    device = torch.device("cpu")

    def features(items):
        return extract_features(model, build_test_loader(cfg, list(items)), device)

    query, gallery, train = features(dataset.query), features(dataset.gallery), features(dataset.train)
    annotations = os.path.join(cfg.DATASETS.ROOT_DIR, DATASET_DIR_NAME, ANNOTATIONS_NAME)
    with open(annotations, newline="", encoding="utf-8") as fh:
        occluder = {row["image"]: row["occlusion"] for row in csv.DictReader(fh)}
    kinds = np.array([occluder[os.path.basename(p)] for p in query.paths])

    lines = ["| queries | n | R1 | mAP |", "| --- | --- | --- | --- |"]

    def row(name, r1, mAP, n):
        lines.append(f"| {name} | {n} | {r1:.1%} | {mAP:.1%} |")

    row("occluded (all)", *evaluate(cfg, query, gallery))
    for kind in sorted(set(kinds)):
        row(f"occluded: {kind}", *evaluate(cfg, query, gallery, np.flatnonzero(kinds == kind)))
    row("holistic, unseen identities (gallery vs gallery)", *evaluate(cfg, gallery, gallery))
    row("holistic, training identities (train vs train)", *evaluate(cfg, train, train))
    if getattr(model, "recovery", False):  # MBF descriptor: global, K body parts, K recovered parts
        dim, k = model.backbone.embed_dim, model.num_parts
        for name, dims in (("global", slice(0, dim)), ("body parts", slice(dim, (1 + k) * dim)),
                           ("recovered parts", slice((1 + k) * dim, (1 + 2 * k) * dim))):
            row(f"occluded, {name} slice only", *evaluate(cfg, query, gallery, dims=dims))
    print("\n".join(lines))
    if args.fills:
        print()
        print(_fills_table(cfg, query, gallery, kinds, features))
    return 0


def _fills_table(cfg, query, gallery, kinds, features) -> str:
    """R1 / mAP of the occluded queries as generated, with occluders painted as background, and left out."""
    from mbf.synthetic import (DATASET_DIR_NAME, GENERATOR_VERSION, MASK_DIR, SynthOptions, generate,
                                    read_manifest, regenerate_command)
    from mbf.data.build import load_dataset

    dataset_dir = os.path.join(cfg.DATASETS.ROOT_DIR, DATASET_DIR_NAME)
    manifest = read_manifest(dataset_dir)
    if manifest is None:
        sys.exit(f"{dataset_dir}: no synthetic manifest; --fills needs a dataset written by mbf synth")
    if manifest.version != GENERATOR_VERSION:  # regenerating would draw other images
        sys.exit(f"{dataset_dir}: generator v{manifest.version}, this is v{GENERATOR_VERSION}; --fills needs a "
                 f"current dataset: {regenerate_command(dataset_dir, manifest.seed)}")
    options = dataclasses.asdict(SynthOptions.from_dict(manifest.options))
    variants = {"as generated": query}
    with tempfile.TemporaryDirectory() as tmp:
        for fill, title in (("background", "occluders painted as background"), ("none", "occluders left out")):
            root = os.path.join(tmp, fill)
            generate(os.path.join(root, DATASET_DIR_NAME), seed=manifest.seed, **{**options, "occluder_fill": fill})
            vcfg = cfg.clone()
            vcfg.defrost()
            vcfg.DATASETS.ROOT_DIR = root
            vcfg.HUMAN_PARSING.MASK_DIR = os.path.join(root, DATASET_DIR_NAME, MASK_DIR)
            vcfg.freeze()
            vq = features(load_dataset(vcfg, verbose=False).query)
            if [os.path.basename(p) for p in vq.paths] != [os.path.basename(p) for p in query.paths]:
                sys.exit(f"--fills: the regenerated queries do not match those in {dataset_dir}")
            variants[title] = vq
    lines = ["| queries (R1 / mAP) | n | " + " | ".join(variants) + " |", "| --- | --- |" + " --- |" * len(variants)]
    for name, rows in [("occluded (all)", None)] + [(k, np.flatnonzero(kinds == k)) for k in sorted(set(kinds))]:
        cells = []
        for q in variants.values():
            r1, mAP, n = evaluate(cfg, q, gallery, rows)
            cells.append(f"{r1:.1%} / {mAP:.1%}")
        lines.append(f"| {name} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
