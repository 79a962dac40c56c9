"""benchmarks/demo_seeds.py: one folder per (model, pair), finished runs reused, mean and spread tabled."""
from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]



def test_each_run_gets_its_folder_and_dataset_and_finished_runs_are_reused(tmp_path, monkeypatch, capsys, benchmark_script):
    demo = benchmark_script("demo_seeds")
    scores = {("mbf", 1): 0.70, ("mbf", 2): 0.60, ("baseline", 1): 0.50, ("baseline", 2): 0.58}
    commands = []

    def fake_run(cmd, check, cwd):
        commands.append(cmd)
        model = "mbf" if cmd[cmd.index("--config_file") + 1].endswith("mbf_tiny.yml") else "baseline"
        folder = Path(cmd[cmd.index("OUTPUT_DIR") + 1])
        folder.mkdir(parents=True)
        r1 = scores[(model, int(cmd[cmd.index("DATASETS.SYNTHETIC_SEED") + 1]))]
        (folder / "results.json").write_text(json.dumps({"rank1": r1, "mAP": r1 - 0.1}))
        assert check and cwd == REPO

    monkeypatch.setattr(demo.subprocess, "run", fake_run)
    out = tmp_path / "seeds"
    assert demo.main(["--out", str(out), "--pairs", "5:1", "6:2", "--", "SOLVER.MAX_EPOCHS", "3"]) == 0
    assert len(commands) == 4
    folders = {c[c.index("OUTPUT_DIR") + 1] for c in commands}
    assert folders == {str(out / f"{m}_s{s}_d{d}") for m in ("mbf", "baseline") for s, d in ((5, 1), (6, 2))}
    for c in commands:
        data_seed = c[c.index("DATASETS.SYNTHETIC_SEED") + 1]
        assert c[c.index("DATASETS.ROOT_DIR") + 1] == str(out / f"data_seed{data_seed}")
        assert c[-2:] == ["SOLVER.MAX_EPOCHS", "3"]
    table = capsys.readouterr().out
    assert "| 5, 1 | 70.0 / 60.0 | 50.0 / 40.0 | +20.0 / +20.0 |" in table
    assert "| 6, 2 | 60.0 / 50.0 | 58.0 / 48.0 | +2.0 / +2.0 |" in table
    assert "| mean (2 pairs) | 65.0 / 55.0 | 54.0 / 44.0 | +11.0 / +11.0 |" in table
    assert "| spread (max - min) (2 pairs) | 10.0 / 10.0 | 8.0 / 8.0 | 18.0 / 18.0 |" in table
    assert (out / "demo_seeds.md").read_text().strip() in table

    commands.clear()  # a second call trains nothing: every folder holds results.json
    assert demo.main(["--out", str(out), "--pairs", "5:1", "6:2"]) == 0
    assert commands == []


def test_table_only_marks_what_was_not_run(tmp_path, capsys, benchmark_script):
    demo = benchmark_script("demo_seeds")
    folder = tmp_path / "mbf_s1234_d0"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps({"rank1": 0.5, "mAP": 0.4}))
    assert demo.main(["--out", str(tmp_path), "--pairs", "1234:0", "7:1", "--table-only"]) == 0
    table = capsys.readouterr().out
    assert "| 1234, 0 | 50.0 / 40.0 | not run |  |" in table
    assert "| 7, 1 | not run | not run |  |" in table
    assert "| mean (1 pair) | 50.0 / 40.0 |  |  |" in table
