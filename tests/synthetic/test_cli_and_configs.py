"""`mbf synth` and the two Synthetic configs."""
from __future__ import annotations

from pathlib import Path

import pytest

from mbf.cli import main
from mbf.config import load_config
from mbf import synthetic as syn
from mbf.parsing import build_mask_dir

REPO = Path(__file__).resolve().parents[2]
ARGS = ["--ids", "9", "--distractors", "1", "--train-per-id", "2"]


def test_cli_writes_then_reports_up_to_date(tmp_path, capsys):
    out = tmp_path / "Synthetic_Occluded"
    assert main(["synth", "--out", str(out), "--seed", "3", *ARGS]) == 0
    assert "wrote" in capsys.readouterr().out
    summary = syn.read_manifest(out)
    assert summary.seed == 3 and summary.identities == {"train": 6, "test": 3, "distractor": 1}
    assert summary.counts[syn.TRAIN_DIR] == 12

    assert main(["synth", "--out", str(out), "--seed", "3", *ARGS]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["synth", "--out", str(out), "--check"]) == 0

    # another seed needs --force; with it the dataset is replaced
    assert main(["synth", "--out", str(out), "--seed", "4", *ARGS]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["synth", "--out", str(out), "--seed", "4", "--force", *ARGS]) == 0
    assert syn.read_manifest(out).seed == 4

    next((out / syn.QUERY_DIR).glob("*.jpg")).unlink()
    assert main(["synth", "--out", str(out), "--check"]) == 1
    assert main(["synth", "--out", str(out), "--seed", "4", *ARGS]) == 2  # a damaged set is redone on purpose only
    assert "--force" in capsys.readouterr().err
    assert main(["synth", "--out", str(out), "--force"]) == 0  # with its own seed and options
    assert main(["synth", "--out", str(out), "--check"]) == 0
    assert main(["synth", "--out", str(out), "--seed", "4", *ARGS]) == 0
    assert "up to date" in capsys.readouterr().out


def test_cli_bad_option_is_a_one_line_error(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "x"), "--cameras", "9"]) == 2
    assert "num_cameras" in capsys.readouterr().err


@pytest.mark.parametrize("name, model, out_dir", [("mbf_tiny.yml", "transformer", "./logs/synthetic_mbf_tiny"),
                                                  ("baseline_tiny.yml", "transreid", "./logs/synthetic_baseline_tiny")])
def test_synthetic_configs_load(name, model, out_dir):
    cfg = load_config(REPO / "configs" / "Synthetic" / name)
    assert cfg.MODEL.NAME == model and cfg.OUTPUT_DIR == out_dir
    assert cfg.DATASETS.NAMES == "synthetic_occ" and cfg.DATASETS.ROOT_DIR == "datasets"
    assert cfg.MODEL.PRETRAIN_CHOICE == "none"
    assert cfg.MODEL.VIT_EMBED_DIM == 128 and cfg.MODEL.VIT_EMBED_DIM % cfg.MODEL.VIT_NUM_HEADS == 0
    assert cfg.MODEL.VIT_EMBED_DIM % cfg.MODEL.NUM_HEAD == 0  # decoder heads
    assert list(cfg.INPUT.SIZE_TRAIN) == [128, 64] == list(cfg.INPUT.SIZE_TEST)
    assert cfg.SOLVER.EVAL_PERIOD == cfg.SOLVER.MAX_EPOCHS
    assert cfg.SOLVER.IMS_PER_BATCH % cfg.DATALOADER.NUM_INSTANCE == 0
    assert cfg.HUMAN_PARSING.SOURCE == "files"
    assert build_mask_dir(cfg) == Path(cfg.DATASETS.ROOT_DIR) / syn.DATASET_DIR_NAME / syn.MASK_DIR


def test_overriding_the_dataset_root_alone_moves_the_part_label_masks(tmp_path):
    cfg = load_config(REPO / "configs" / "Synthetic" / "mbf_tiny.yml", ["DATASETS.ROOT_DIR", str(tmp_path)])
    assert build_mask_dir(cfg) == tmp_path / syn.DATASET_DIR_NAME / syn.MASK_DIR


def test_tiny_configs_share_the_budget():
    mbf = load_config(REPO / "configs" / "Synthetic" / "mbf_tiny.yml")
    base = load_config(REPO / "configs" / "Synthetic" / "baseline_tiny.yml")
    for key in ("TRANSFORMER_TYPE", "VIT_EMBED_DIM", "VIT_DEPTH", "VIT_NUM_HEADS", "STRIDE_SIZE", "SIE_CAMERA"):
        assert mbf.MODEL[key] == base.MODEL[key], key
    for section in ("SOLVER", "INPUT", "DATALOADER", "DATASETS"):
        assert mbf[section] == base[section], section
    assert mbf.MODEL.RECOVERY and not base.MODEL.RECOVERY
