"""MBF against the global baseline on the synthetic demo, over several (training seed, data seed) pairs.

    python benchmarks/demo_seeds.py --out logs/demo_seeds [--pairs 1234:0 7:1 99:2] [-- KEY VALUE ...]

For every pair (SOLVER.SEED, DATASETS.SYNTHETIC_SEED) it trains ``configs/Synthetic/mbf_tiny.yml``
and ``configs/Synthetic/baseline_tiny.yml`` (one run at a time), each in its own folder
``<out>/<model>_s<solver seed>_d<data seed>``, on the dataset generated for that data seed in
``<out>/data_seed<data seed>``, and prints a markdown table of R1 / mAP on the occluded queries:
each pair, the mean over the pairs, the spread (max - min) and MBF's lead over the baseline.
The table is also written to ``<out>/demo_seeds.md``.

A run whose folder already holds ``results.json`` is read, not trained again, so an
interrupted benchmark continues where it stopped; ``--table-only`` trains nothing and tables
the runs that exist. ``KEY VALUE`` overrides after ``--`` apply to every run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODELS = {"mbf": "configs/Synthetic/mbf_tiny.yml", "baseline": "configs/Synthetic/baseline_tiny.yml"}
DEFAULT_PAIRS = ("1234:0", "7:1", "99:2")


def parse_pair(text: str) -> tuple[int, int]:
    try:
        solver, data = text.split(":")
        return int(solver), int(data)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a pair is SOLVER_SEED:DATA_SEED (e.g. 1234:0), got {text!r}") from None


def config_overrides(opts: list[str]) -> list[str]:
    """The ``KEY VALUE`` words after the script's own options, without the ``--`` that may lead them."""
    return opts[1:] if opts[:1] == ["--"] else list(opts)


def run_dir(out: Path, model: str, pair: tuple[int, int]) -> Path:
    return out / f"{model}_s{pair[0]}_d{pair[1]}"


def train(out: Path, model: str, pair: tuple[int, int], overrides: list[str]) -> dict:
    """Train one (model, pair) unless its folder already holds results.json; return its results."""
    folder = run_dir(out, model, pair)
    results = folder / "results.json"
    if not results.is_file():
        cmd = [sys.executable, "-m", "mbf", "train", "--config_file", str(REPO / MODELS[model]),
               "SOLVER.SEED", str(pair[0]), "DATASETS.SYNTHETIC_SEED", str(pair[1]),
               "DATASETS.ROOT_DIR", str(out / f"data_seed{pair[1]}"), "OUTPUT_DIR", str(folder), *overrides]
        if folder.exists():  # an unfinished run of this benchmark: start it again
            cmd.append("--overwrite")
        start = time.perf_counter()
        print(f"training {model} pair {pair[0]}:{pair[1]} -> {folder}", flush=True)
        subprocess.run(cmd, check=True, cwd=REPO)
        print(f"  done in {time.perf_counter() - start:.0f} s", flush=True)
    return json.loads(results.read_text())


def _pct(v: float) -> str:
    return f"{100 * v:.1f}"


def table(rows: dict[tuple[int, int], dict[str, dict]]) -> str:
    """Markdown: R1 / mAP of both models per pair, the mean and spread, MBF's lead."""
    lines = ["| pair (SOLVER.SEED, DATASETS.SYNTHETIC_SEED) | MBF R1 / mAP | baseline R1 / mAP | MBF lead R1 / mAP |",
             "| --- | --- | --- | --- |"]
    stats: dict[str, list[list[float]]] = {"mbf": [[], []], "baseline": [[], []], "lead": [[], []]}
    for pair, res in rows.items():
        cells = []
        for model in ("mbf", "baseline"):
            if model in res:
                r1, ap = res[model]["rank1"], res[model]["mAP"]
                stats[model][0].append(r1)
                stats[model][1].append(ap)
                cells.append(f"{_pct(r1)} / {_pct(ap)}")
            else:
                cells.append("not run")
        if len(res) == 2:
            d1, dap = (res["mbf"][k] - res["baseline"][k] for k in ("rank1", "mAP"))
            stats["lead"][0].append(d1)
            stats["lead"][1].append(dap)
            cells.append(f"{100 * d1:+.1f} / {100 * dap:+.1f}")
        else:
            cells.append("")
        lines.append(f"| {pair[0]}, {pair[1]} | " + " | ".join(cells) + " |")
    for name, fn in (("mean", lambda v: sum(v) / len(v)), ("spread (max - min)", lambda v: max(v) - min(v))):
        cells = []
        for model in ("mbf", "baseline", "lead"):
            r1s, aps = stats[model]
            if not r1s:
                cells.append("")
            elif model == "lead" and name == "mean":
                cells.append(f"{100 * fn(r1s):+.1f} / {100 * fn(aps):+.1f}")
            else:
                cells.append(f"{_pct(fn(r1s))} / {_pct(fn(aps))}")
        n = len(stats["mbf"][0])
        lines.append(f"| {name} ({n} pair{'s' if n != 1 else ''}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="logs/demo_seeds", help="folder for the runs and datasets (default: %(default)s)")
    ap.add_argument("--pairs", nargs="+", type=parse_pair, default=[parse_pair(p) for p in DEFAULT_PAIRS],
                    metavar="SOLVER:DATA", help="(SOLVER.SEED, DATASETS.SYNTHETIC_SEED) pairs (default: %(default)s)")
    ap.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    ap.add_argument("--table-only", action="store_true", help="train nothing; table the finished runs")
    ap.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ... for every run")
    args = ap.parse_args(argv)
    overrides = config_overrides(args.opts)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[tuple[int, int], dict[str, dict]] = {}
    for pair in args.pairs:
        rows[pair] = {}
        for model in args.models:
            results = run_dir(out, model, pair) / "results.json"
            if args.table_only:
                if results.is_file():
                    rows[pair][model] = json.loads(results.read_text())
            else:
                rows[pair][model] = train(out, model, pair, overrides)
    text = table(rows)
    print(text)
    (out / "demo_seeds.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
