"""benchmarks/gpu_check.py --dry-run: the prepared GPU check runs its code paths on the CPU."""
from __future__ import annotations

import json




def test_the_dry_run_covers_every_check_and_writes_json_and_rows(small_synthetic_root, tmp_path,
                                                                 benchmark_script):
    out, rows = tmp_path / "check.json", tmp_path / "rows.md"
    code = benchmark_script("gpu_check").main(["--dry-run", "--out", str(out), "--rows", str(rows), "--work", str(tmp_path / "work"),
                           "--root", str(small_synthetic_root)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["dry_run"] is True
    (train,) = report["train_amp"].values()  # the CPU has bfloat16 only
    assert train["finite"] and train["precision"] == "bfloat16 autocast on cpu"
    test = report["test_amp"]
    assert set(test) == {"float32", "bfloat16", "throughput"}
    assert abs(test["bfloat16"]["mAP"] - test["float32"]["mAP"]) <= 0.05
    assert all(rate > 0 for rate in test["throughput"]["images_per_s"].values())
    assert report["nccl"]["returncode"] == 0 and report["nccl"]["backend"] == "gloo" and report["nccl"]["results"]
    assert set(report["parser"]["s_per_step"]) == {"online_parser", "parse_cache"}
    table = rows.read_text()
    assert "dry run" in table and table.count("\n| ") >= 7
