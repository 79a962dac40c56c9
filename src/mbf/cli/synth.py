"""``mbf synth``: write the synthetic occluded re-ID dataset (Market-1501 layout + part masks)."""
from __future__ import annotations

import os

HELP = "generate the synthetic occluded dataset: mbf synth --out datasets/Synthetic_Occluded --seed 0"


def add_arguments(parser) -> None:
    from ..data.synthetic import DATASET_DIR_NAME, SynthOptions

    d = SynthOptions()
    parser.add_argument("--out", default=os.path.join("datasets", DATASET_DIR_NAME),
                        help="output folder (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same bytes (default: 0)")
    parser.add_argument("--ids", type=int, default=d.num_ids,
                        help="identities with images; a third of them are test identities (default: %(default)s)")
    parser.add_argument("--distractors", type=int, default=d.num_distractor_ids,
                        help="extra gallery-only identities (default: %(default)s)")
    parser.add_argument("--cameras", type=int, default=d.num_cameras, help="number of cameras, 2..6 (default: %(default)s)")
    parser.add_argument("--train-per-id", type=int, default=d.train_images_per_id,
                        help="training images per identity (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="replace a synthetic dataset already in --out")
    parser.add_argument("--check", action="store_true", help="only check that --out holds a complete dataset")


def _print_summary(summary, verb: str) -> None:
    from ..data.synthetic import SPLIT_DIRS

    total = sum(summary.counts.values())
    ids = summary.identities
    print(f"{verb} {summary.root}: {total} images, seed {summary.seed}, generator v{summary.version}"
          + (f", {summary.seconds:.1f} s" if summary.seconds else ""))
    print(f"  identities: {ids.get('train', 0)} train, {ids.get('test', 0)} test, "
          f"{ids.get('distractor', 0)} gallery distractors; cameras: {summary.options.get('num_cameras')}")
    for split in (s for s in SPLIT_DIRS if s in summary.counts):
        n = summary.counts[split]
        occ = summary.occlusion.get(split, {})
        occluded = n - occ.get("none", 0)
        print(f"  {split:<20} {n:5d} images, {occluded:4d} occluded")
    print(f"  part masks: {os.path.join(summary.root, 'masks')}/<split>/<image stem>.png")


def run(args) -> int:
    # deferred (see mbf.cli): `mbf --help` imports every subcommand module, not torch
    from ..data import synthetic as syn

    if args.check:
        problems = syn.verify(args.out)
        if problems:
            for p in problems:
                print(f"{args.out}: {p}")
            return 1
        _print_summary(syn.read_manifest(args.out), "complete:")
        return 0

    options = dict(num_ids=args.ids, num_distractor_ids=args.distractors, num_cameras=args.cameras,
                   train_images_per_id=args.train_per_id)
    wanted = syn.make_options(**options)
    state = syn.dataset_status(args.out)
    if state == "complete" and not args.force:
        existing = syn.read_manifest(args.out)
        if existing.seed == args.seed and existing.version == syn.GENERATOR_VERSION \
                and syn.SynthOptions.from_dict(existing.options) == wanted:
            _print_summary(existing, "up to date:")
            return 0
    summary = syn.generate(args.out, seed=args.seed, overwrite=args.force or state == "incomplete", **options)
    _print_summary(summary, "wrote")
    return 0
