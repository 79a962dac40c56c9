"""``mbf synth``: write the synthetic occluded re-ID dataset (Market-1501 layout + part masks)."""
from __future__ import annotations

import os

HELP = "generate the synthetic occluded dataset: mbf synth --out datasets/Synthetic_Occluded --seed 0"

# the options with a flag (see CLI_FLAGS) and their help; their default is None: "not given"
_OPTION_HELP = {
    "num_ids": "identities with images; a third of them are test identities",
    "num_distractor_ids": "extra gallery-only identities",
    "num_cameras": "number of cameras, 2..6",
    "train_images_per_id": "training images per identity",
}


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def add_arguments(parser) -> None:
    from ..synthetic import CLI_FLAGS, DATASET_DIR_NAME, SynthOptions

    d = SynthOptions()
    parser.add_argument("--out", default=os.path.join("datasets", DATASET_DIR_NAME),
                        help="output folder (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed; same seed, same bytes (default: 0; with --force: the dataset's own)")
    for name, flag in CLI_FLAGS.items():
        parser.add_argument(flag, type=int, default=None, dest=_dest(flag),
                            help=f"{_OPTION_HELP[name]} (default: {getattr(d, name)}; with --force: the dataset's own)")
    parser.add_argument("--force", action="store_true",
                        help="regenerate the synthetic dataset in --out, with its own seed and options except those "
                             "given (refused while its folders hold files the generator did not write)")
    parser.add_argument("--check", action="store_true",
                        help="only check that --out holds a complete dataset, unchanged since it was generated")


def _print_summary(summary, verb: str) -> None:
    from ..synthetic import SPLIT_DIRS

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
    from .. import synthetic as syn

    if args.check:
        problems = syn.verify(args.out)
        if problems:
            for p in problems:
                print(f"{args.out}: {p}")
            return 1
        _print_summary(syn.read_manifest(args.out), "complete:")
        return 0

    given = {name: getattr(args, _dest(flag)) for name, flag in syn.CLI_FLAGS.items()
             if getattr(args, _dest(flag)) is not None}  # the rest: the dataset's own, else the defaults
    existing = None if args.force else syn.up_to_date(args.out, args.seed, **given)
    if existing is not None:
        _print_summary(existing, "up to date:")
        return 0
    summary = syn.generate(args.out, seed=args.seed, overwrite=args.force, **given)
    _print_summary(summary, "wrote")
    return 0
