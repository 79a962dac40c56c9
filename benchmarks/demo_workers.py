"""Training time of the synthetic demo with different numbers of data-loader worker processes.

    python benchmarks/demo_workers.py [--workers 0 2] [--epochs 3] [--rounds 2] [--data DIR] [-- KEY VALUE ...]

Trains ``configs/Synthetic/mbf_tiny.yml`` for ``--epochs`` epochs once per DATALOADER.NUM_WORKERS
value and round, the values taking turns (0, 2, 0, 2, ...) so that a machine whose speed drifts
affects them alike, each run in a temporary folder on one dataset generated beforehand (in
``--data`` unless it holds one already, or in a temporary folder). It prints, per value, the
mean of the trainer's own "Time per batch" over every epoch of every round, the runs' wall times, and the ratio to the
first value. On a machine with as many cores as torch has threads, worker processes take CPU
time from the training step they feed.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from demo_seeds import REPO, config_overrides  # this folder is on sys.path when run as a script

CONFIG = REPO / "configs/Synthetic/mbf_tiny.yml"
BATCH_TIME = re.compile(r"Time per batch: ([0-9.]+)\[s\]")


def batch_times(log: str) -> list[float]:
    """The per-epoch "Time per batch" values a training run logged, in order."""
    return [float(m) for m in BATCH_TIME.findall(log)]


def train_once(workers: int, epochs: int, data_root: Path, out: Path, overrides: list[str]) -> tuple[list[float], float]:
    cmd = [sys.executable, "-m", "mbf", "train", "--config_file", str(CONFIG),
           "DATASETS.ROOT_DIR", str(data_root), "OUTPUT_DIR", str(out), "DATALOADER.NUM_WORKERS", str(workers),
           "SOLVER.MAX_EPOCHS", str(epochs), "SOLVER.CHECKPOINT_PERIOD", str(epochs),
           "SOLVER.EVAL_PERIOD", str(epochs), "TEST.VISUALIZE", "False", *overrides]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"training with NUM_WORKERS {workers} failed:\n{done.stderr[-2000:]}")
    times = batch_times(done.stdout + done.stderr)
    if len(times) != epochs:
        sys.exit(f"expected {epochs} 'Time per batch' lines from the training log, found {len(times)}")
    return times, wall


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", nargs="+", type=int, default=[0, 2], help="NUM_WORKERS values (default: %(default)s)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--data", help="DATASETS.ROOT_DIR holding (or to hold) Synthetic_Occluded; default: a temporary folder")
    ap.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ... for every run")
    args = ap.parse_args(argv)
    overrides = config_overrides(args.opts)
    with tempfile.TemporaryDirectory(prefix="mbf-workers-") as tmp:
        data_root = Path(args.data).resolve() if args.data else Path(tmp) / "data"
        if not (data_root / "Synthetic_Occluded").exists():  # generated once, outside the timed runs
            subprocess.run([sys.executable, "-m", "mbf", "synth", "--out", str(data_root / "Synthetic_Occluded")],
                           cwd=REPO, check=True, capture_output=True)
        per_batch: dict[int, list[float]] = {w: [] for w in args.workers}
        walls: dict[int, list[float]] = {w: [] for w in args.workers}
        for rnd in range(args.rounds):
            for w in args.workers:
                times, wall = train_once(w, args.epochs, data_root, Path(tmp) / f"run_w{w}_r{rnd}", overrides)
                per_batch[w].extend(times)
                walls[w].append(wall)
                print(f"round {rnd + 1}, NUM_WORKERS {w}: {sum(times) / len(times):.3f} s/batch, {wall:.1f} s wall",
                      flush=True)
    first = args.workers[0]
    base = sum(per_batch[first]) / len(per_batch[first])
    print(f"\n| DATALOADER.NUM_WORKERS | s/batch (mean of {args.rounds} x {args.epochs} epochs) | wall s per run | "
          f"s/batch relative to {first} |")
    print("| --- | --- | --- | --- |")
    for w in args.workers:
        mean = sum(per_batch[w]) / len(per_batch[w])
        wall = ", ".join(f"{x:.1f}" for x in walls[w])
        print(f"| {w} | {mean:.3f} | {wall} | {mean / base:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
