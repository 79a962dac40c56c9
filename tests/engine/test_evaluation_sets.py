"""Several test sets in one run: DATASETS.TEST_NAMES in test.py and at the end of training."""
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from mbf.cli import main
from mbf.config import get_cfg, load_config
from mbf.data import build_dataset
from mbf.engine.build import build_evaluation, build_trainer
from mbf.errors import DatasetError
from mbf.modeling import build_model

from ..data import benchmark_trees as trees
from .conftest import TINY_CONFIG, tiny_overrides

THREE = "['occ_reid','partial_reid','partial_ilids']"


class MeanColour(nn.Module):
    """A 'model' whose descriptor is the image's mean colour (the trees' colour encodes the pid)."""

    def forward(self, img, cam_label=None, view_label=None):
        return img.mean(dim=(2, 3))


def small_cfg(root: Path, *opts):
    cfg = get_cfg()
    cfg.merge_from_list(["INPUT.SIZE_TEST", [16, 8], "DATALOADER.NUM_WORKERS", 0, "TEST.IMS_PER_BATCH", 4,
                         "DATASETS.ROOT_DIR", str(root), *opts])
    return cfg


def test_partial_reid_query_and_gallery_cameras_let_every_match_count(tmp_path):
    trees.partial_reid(tmp_path, pids=(1, 2, 3), images=True)
    trees.market_train(tmp_path, images=True)
    dataset = build_dataset("partial_reid", str(tmp_path), verbose=False)
    cfg = small_cfg(tmp_path, "DATASETS.TEST_NAMES", ["partial_reid"])
    result = build_evaluation(cfg, MeanColour(), torch.device("cpu"), {"partial_reid": dataset}).evaluate_set(
        MeanColour(), "partial_reid")
    assert result.rank(1) == 1.0 and result.mAP == pytest.approx(1.0)


def test_evaluate_sets_returns_each_listed_set_in_order(tmp_path):
    trees.partial_reid(tmp_path, images=True)
    trees.partial_ilids(tmp_path, pids=(1, 2), images=True)
    cfg = small_cfg(tmp_path, "DATASETS.TEST_NAMES", ["partial_ilids", "partial_reid"])
    results = build_evaluation(cfg, MeanColour(), torch.device("cpu")).evaluate(MeanColour())  # no market1501/
    assert list(results) == ["partial_ilids", "partial_reid"]
    assert len(results["partial_ilids"].q_paths) == 2 and len(results["partial_reid"].g_paths) == 6


def write_protocol_tree(root: Path) -> None:
    """Market training crops and the three Market-trained test sets, as they download."""
    trees.market_train(root, images=True)
    trees.occluded_reid_download(root, images=True)
    trees.partial_reid(root, images=True)
    trees.partial_ilids(root, images=True)


def tiny_checkpoint(cfg, root: Path, path: Path) -> Path:
    dataset = build_dataset(cfg.DATASETS.NAMES, str(root), verbose=False)
    model = build_model(cfg, dataset.num_train_pids, dataset.num_train_cams, dataset.num_train_vids, pretrained=False)
    torch.save(model.state_dict(), path)
    return path


def test_test_command_evaluates_three_sets_and_writes_three_entries(tmp_path):
    root = tmp_path / "datasets"
    write_protocol_tree(root)
    out = tmp_path / "run"
    opts = tiny_overrides(root, out) + ["DATASETS.NAMES", "occ_reid", "TEST.VISUALIZE", "False"]
    weights = tiny_checkpoint(load_config(TINY_CONFIG, opts), root, tmp_path / "tiny.pth")
    code = main(["test", "--config_file", str(TINY_CONFIG), *opts, "DATASETS.TEST_NAMES", THREE,
                 "TEST.WEIGHT", str(weights)])
    assert code == 0
    out = out / "test" / "tiny"  # each evaluation has its own folder
    report = json.loads((out / "results.json").read_text())
    for name, queries, gallery in (("occ_reid", 6, 6), ("partial_reid", 6, 6), ("partial_ilids", 3, 3)):
        entry = report[name]
        assert (entry["num_query"], entry["num_gallery"]) == (queries, gallery), name
        assert 0.0 <= entry["mAP"] <= 1.0 and 0.0 <= entry["rank1"] <= entry["rank5"] <= entry["rank10"] <= 1.0
    assert {k: report[k] for k in ("rank1", "rank5", "rank10", "mAP")} == \
        {k: report["occ_reid"][k] for k in ("rank1", "rank5", "rank10", "mAP")}
    log = (out / "test_log.txt").read_text()
    assert all(f"Validation Results - {name}" in log for name in ("occ_reid", "partial_reid", "partial_ilids"))


def test_a_missing_test_set_fails_before_anything_is_written(tmp_path, capsys):
    root = tmp_path / "datasets"
    trees.market_train(root, images=True)
    trees.occluded_reid_download(root, images=True)
    out = tmp_path / "run"
    opts = tiny_overrides(root, out) + ["DATASETS.NAMES", "occ_reid"]
    weights = tiny_checkpoint(load_config(TINY_CONFIG, opts), root, tmp_path / "tiny.pth")
    code = main(["test", "--config_file", str(TINY_CONFIG), *opts, "DATASETS.TEST_NAMES", THREE,
                 "TEST.WEIGHT", str(weights)])
    assert code == 2
    assert "Partial_REID/partial_body_images not found" in capsys.readouterr().err
    assert not out.exists()


def test_a_test_set_with_more_cameras_than_the_model_is_refused(tmp_path):
    trees.partial_reid(tmp_path, images=True)

    class OneCamera(MeanColour):
        num_cameras = 1

    cfg = small_cfg(tmp_path, "DATASETS.TEST_NAMES", ["partial_reid"])
    with pytest.raises(DatasetError, match=r"camera table \(MODEL.SIE_CAMERA\) has 1 cameras, but test set 'partial_reid' uses 2 \(camera ids up to 1\)"):
        build_evaluation(cfg, OneCamera(), torch.device("cpu"))


def test_training_ends_by_evaluating_every_listed_set(tiny_cfg, small_synthetic_root, tmp_path):
    root = tmp_path / "datasets"
    root.mkdir()
    (root / "Synthetic_Occluded").symlink_to(small_synthetic_root / "Synthetic_Occluded")
    trees.partial_ilids(root, pids=(1, 2), images=True)
    cfg = tiny_cfg(epochs=1, extra=["DATASETS.ROOT_DIR", str(root),
                                    "DATASETS.TEST_NAMES", "['synthetic_occ','partial_ilids']"])
    result = build_trainer(cfg).fit()
    report = json.loads((Path(cfg.OUTPUT_DIR) / "results.json").read_text())
    assert report["partial_ilids"]["num_query"] == 2
    assert report["synthetic_occ"]["rank1"] == report["rank1"] == float(result.cmc[0])
