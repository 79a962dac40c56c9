"""benchmarks/track.py: generated occluded clips with ground truth and detections, motmetrics scores, and a
tiny run of the whole benchmark (BoxMOT's BoT-SORT; skipped with the reason where BoxMOT is not installed).
benchmarks/embed_precision.py: a tiny run. No speed is asserted."""
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load(name: str):
    """benchmarks/<name>.py as a module registered under its name (its dataclasses look it up)."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def track():
    pytest.importorskip("motmetrics", reason="motmetrics is not installed (pip install -e '.[tracking]')")
    return load("track")


@pytest.fixture(scope="module")
def clip(track):
    return track.make_clip(3, frames=6, height=180, width=320, people=6)


def test_a_clip_has_bgr_frames_ground_truth_and_jittered_detections(track, clip):
    assert len(clip.frames) == len(clip.truth) == len(clip.detections) == 6
    for frame, (ids, boxes), dets, vis in zip(clip.frames, clip.truth, clip.detections, clip.visibility):
        assert frame.shape == (180, 320, 3) and frame.dtype == np.uint8 and frame.flags.c_contiguous
        assert boxes.shape == (len(ids), 4) and len(set(ids.tolist())) == len(ids)
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 320).all() and (boxes[:, 3] <= 180).all()
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        assert ((vis >= track.MIN_VISIBLE) & (vis <= 1)).all()
        assert dets.shape[1] == 6 and len(dets) <= len(ids) and ((dets[:, 4] >= 0.6) & (dets[:, 4] <= 1)).all()
    assert sum(len(i) for i, _ in clip.truth) > 0
    again = track.make_clip(3, frames=6, height=180, width=320, people=6)  # a pure function of the seed
    assert all((a == b).all() for a, b in zip(clip.frames, again.frames))


def test_the_scores_are_motmetrics_own(track, clip):
    perfect = track.score(clip, [(ids, boxes) for ids, boxes in clip.truth])
    assert perfect["idf1"] == 1.0 and perfect["id_switches"] == 0 and perfect["mota"] == 1.0
    swapped = [(ids if t < 3 else ids[::-1], boxes) for t, (ids, boxes) in enumerate(clip.truth)]
    worse = track.score(clip, swapped)
    assert worse["id_switches"] > 0 and worse["idf1"] < 1.0
    d = track.iou_distances(np.array([[0, 0, 10, 10.]]), np.array([[0, 0, 10, 10.], [5, 5, 15, 15], [0, 0, 10, 8]]))
    assert d[0, 0] == 0 and np.isnan(d[0, 1]) and d[0, 2] == pytest.approx(0.2)


def test_a_tiny_run_writes_the_report_and_the_table(track, tmp_path, capsys):
    pytest.importorskip("boxmot", reason="BoxMOT is not installed (pip install -e '.[tracking]')")
    out, rows = tmp_path / "track.json", tmp_path / "track.md"
    assert track.main(["--tiny", "--seeds", "0", "1", "--json", str(out), "--table", str(rows)]) == 0
    report = json.loads(out.read_text())
    assert set(report["results"]) == {"botsort/none", "botsort/baseline", "botsort/mbf", "botsort/baseline, calibrated",
                                      "botsort/mbf, calibrated"}
    for key, runs in report["results"].items():
        assert [r["seed"] for r in runs] == [0, 1]
        for r in runs:
            assert 0 <= r["idf1"] <= 1 and r["id_switches"] >= 0 and r["mota"] <= 1
            assert (r["reid_boxes"] > 0) == (key != "botsort/none")
    assert set(report["calibration"]) == {"baseline", "mbf"}
    assert 0 < report["calibration"]["mbf"]["appearance_thresh"] < 2
    table = rows.read_text().splitlines()
    assert table[0].startswith("| tracker | re-ID | seed 0: IDF1 / IDSW / MOTA | seed 1:") and len(table) == 2 + 5
    assert table[2].startswith("| botsort | none |") and table[2].endswith("| - | - |")


def test_the_precision_benchmark_runs_on_the_tiny_model(tmp_path):
    bench = load("embed_precision")
    assert bench.main(["--tiny", "--chunks", "0,4", "--iters", "1", "--threads", "1",
                       "--json", str(tmp_path / "p.json")]) == 0
    rows = json.loads((tmp_path / "p.json").read_text())["rows"]
    assert [(r["precision"], r["chunk"]) for r in rows] == [("float32", 0), ("float32", 4), ("bfloat16", 0),
                                                             ("bfloat16", 4)]
    assert rows[1]["cos_to_float32_min"] > 0.9999 and rows[3]["cos_to_float32_min"] > 0.99
