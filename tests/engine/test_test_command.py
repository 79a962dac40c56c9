"""``python test.py``: sized from the checkpoint, no training split needed, results in a
folder of its own, one clear error when the camera table cannot serve the test set."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from mbf.cli import main
from mbf.config import load_config
from mbf.synthetic import DATASET_DIR_NAME
from mbf.engine.checkpoint import atomic_save
from mbf.modeling import build_model

from .conftest import REPO, TINY_CONFIG, tiny_overrides


@pytest.fixture(scope="module")
def test_only_root(small_synthetic_root, tmp_path_factory) -> Path:
    """An Occluded-REID tree (renamed layout, .tif) made of the small synthetic set's query and
    gallery, with no market1501 folder: the issue's `occ_reid` without its training set."""
    root = tmp_path_factory.mktemp("test_only")
    for source, target in (("query", "query"), ("bounding_box_test", "bounding_box_test")):
        folder = root / "Occluded_REID" / target
        folder.mkdir(parents=True)
        for image in sorted((small_synthetic_root / DATASET_DIR_NAME / source).glob("*.jpg")):
            with Image.open(image) as img:
                img.save(folder / f"{image.stem}.tif")
    return root


def occ_reid_overrides(root: Path, output_dir: Path) -> list[str]:
    return tiny_overrides(root, output_dir) + ["DATASETS.NAMES", "occ_reid"]


def save_weights(path: Path, opts: list[str], num_classes: int, cameras: int = 2) -> Path:
    """A tiny model of the given size with random weights, as `train.py` saves it."""
    cfg = load_config(TINY_CONFIG, opts)
    atomic_save(build_model(cfg, num_classes, cameras, 1).state_dict(), path)
    return path


def test_test_py_runs_without_the_training_split_and_keeps_the_run_results(test_only_root, tmp_path):
    run = tmp_path / "run"
    opts = occ_reid_overrides(test_only_root, run)
    # 11 identities and 6 cameras: nothing to compare with, the training split is absent
    weights = save_weights(tmp_path / "transformer_3.pth", opts, num_classes=11, cameras=6)
    run.mkdir()
    (run / "results.json").write_text('{"rank1": 0.5}')  # the training run's own results
    cmd = [sys.executable, "test.py", "--config_file", str(TINY_CONFIG), *opts, "TEST.WEIGHT", str(weights)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "CMC curve, Rank-1" in done.stdout and "mAP" in done.stdout
    assert (run / "results.json").read_text() == '{"rank1": 0.5}'  # untouched
    out = run / "test" / "transformer_3"
    report = json.loads((out / "results.json").read_text())
    assert 0.0 <= report["mAP"] <= 1.0 and report["weights"] == str(weights)
    for name in ("test_log.txt", "config.yaml", "run.json", "environment.json", "retrieval.png"):
        assert (out / name).is_file(), name
    assert "test.py" in json.loads((out / "run.json").read_text())["invocations"][0]["command"]

    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((run / "test" / "transformer_3_2" / "results.json").read_text())["mAP"] == report["mAP"]


def test_a_camera_table_too_small_for_the_test_set_is_one_clear_error(test_only_root, tmp_path, capsys):
    opts = occ_reid_overrides(test_only_root, tmp_path / "run")  # the tiny config has MODEL.SIE_CAMERA True
    weights = save_weights(tmp_path / "one_camera.pth", opts, num_classes=6, cameras=1)
    code = main(["test", "--config_file", str(TINY_CONFIG), *opts, "TEST.WEIGHT", str(weights)])
    err = capsys.readouterr().err
    assert code == 2
    assert "one_camera.pth" in err and "has 1 cameras" in err and "uses 2" in err
    assert not (tmp_path / "run" / "test").exists()
