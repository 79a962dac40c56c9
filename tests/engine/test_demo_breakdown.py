"""benchmarks/demo_breakdown.py on a very small synthetic set with an untrained tiny MBF."""
from __future__ import annotations

import re

import torch

from mbf.config import load_config
from mbf.data.build import load_dataset
from mbf.modeling import build_model

from .conftest import TINY_CONFIG



def test_breakdown_scores_the_queries_as_generated_painted_over_and_without_occluders(tiny_opts, tmp_path, capsys,
                                                                                     benchmark_script):
    opts = tiny_opts()
    cfg = load_config(TINY_CONFIG, opts)
    data = load_dataset(cfg, verbose=False)
    torch.manual_seed(0)
    model = build_model(cfg, data.num_train_pids, data.num_train_cams, data.num_train_vids, pretrained=False)
    weights = tmp_path / "untrained.pth"
    torch.save(model.state_dict(), weights)

    breakdown = benchmark_script("demo_breakdown")
    assert breakdown.main(["--config_file", str(TINY_CONFIG), "--weights", str(weights), "--fills", *opts]) == 0
    tables = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]  # not log lines
    split = next(i for i, line in enumerate(tables) if line.startswith("| queries (R1 / mAP)"))
    first, (header, _, *rows) = "\n".join(tables[:split]), tables[split:]
    overall = re.search(r"\| occluded \(all\) \| (\d+) \| ([\d.]+)% \| ([\d.]+)% \|", first)
    assert overall and int(overall.group(1)) == len(data.query)
    assert "global slice only" in first and "recovered parts slice only" in first
    assert header.count("|") == 6 and "occluders painted as background" in header and "occluders left out" in header
    cells = [re.findall(r"([\d.]+)% / ([\d.]+)%", row) for row in rows]
    assert all(len(c) == 3 for c in cells) and len(rows) >= 2
    # the "as generated" column repeats the first table's numbers for the same queries
    assert cells[0][0] == (overall.group(2), overall.group(3))
    assert all(0.0 <= float(v) <= 100.0 for c in cells for pair in c for v in pair)
