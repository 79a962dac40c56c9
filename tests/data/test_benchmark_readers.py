"""Every benchmark reader on a tree in its exact download layout."""
import logging
import os

import pytest

from mbf.data import DATASETS, build_dataset, build_test_set
from mbf.data.datasets import DatasetReader, register_dataset
from mbf.data.datasets.base import FolderSource, pid_before_underscore
from mbf.errors import DatasetError

from . import benchmark_trees as trees


def summary(items):
    return [(os.path.basename(path), pid, cam, view) for path, pid, cam, view in items]


def pid_and_number(path):
    parts = os.path.basename(path).split("_")  # 001_02.tif or 001_c1_02.tif
    return parts[0], parts[-1]


def triples(items):
    return [(pid, cam, view) for _, pid, cam, view in items]


@pytest.fixture
def root(tmp_path):
    trees.market_train(tmp_path)
    return tmp_path


def test_occluded_reid_as_downloaded_queries_occluded_crops_against_whole_ones(root):
    trees.occluded_reid_download(root)
    ds = build_dataset("occ_reid", str(root), verbose=False)
    assert summary(ds.query)[:3] == [("001_01.tif", 1, 0, 0), ("001_02.tif", 1, 0, 0), ("002_01.tif", 2, 0, 0)]
    assert all("occluded_body_images" in p for p, *_ in ds.query)
    assert all("whole_body_images" in p and cam == 2 for p, _, cam, _ in ds.gallery)
    assert all("market1501" in p for p, *_ in ds.train) and ds.num_train_pids == 3


def test_both_occluded_reid_layouts_give_identical_items(tmp_path):
    raw, renamed = tmp_path / "raw", tmp_path / "renamed"
    for where in (raw, renamed):
        trees.market_train(where)
    trees.occluded_reid_download(raw, pids=(1, 2, 10), per_id=3)
    trees.occluded_reid_renamed(renamed, pids=(1, 2, 10), per_id=3)
    a = build_dataset("occ_reid", str(raw), verbose=False)
    b = build_dataset("occ_reid", str(renamed), verbose=False)
    for split in ("query", "gallery"):
        assert triples(getattr(a, split)) == triples(getattr(b, split)), split
        # the same image (pid, number) at the same position
        assert [pid_and_number(p) for p, *_ in getattr(a, split)] == [pid_and_number(p) for p, *_ in getattr(b, split)]
    assert triples(a.train) == triples(b.train)


def test_occluded_reid_missing_shows_the_download_tree(root):
    with pytest.raises(DatasetError) as err:
        build_dataset("occ_reid", str(root), verbose=False)
    message = str(err.value)
    assert "Occluded_REID/occluded_body_images not found" in message
    assert "Occluded_REID/occluded_body_images/<pid>/<pid>_<nn>.tif   (query)" in message
    assert "Occluded_REID/whole_body_images/<pid>/<pid>_<nn>.tif   (gallery)" in message
    assert "renamed" in message and "market1501/bounding_box_train" in message


def test_partial_reid_pids_and_cameras(root):
    trees.partial_reid(root, pids=(1, 2, 60))
    ds = build_dataset("partial_reid", str(root), verbose=False)
    assert summary(ds.query) == [(f"{p:03d}_{n:02d}.jpg", p, 0, 0) for p in (1, 2, 60) for n in (1, 2)]
    assert summary(ds.gallery) == [(f"{p:03d}_{n:02d}.jpg", p, 1, 0) for p in (1, 2, 60) for n in (1, 2)]


def test_partial_ilids_pid_is_the_stem(root):
    trees.partial_ilids(root, pids=(3, 119))
    ds = build_dataset("partial_ilids", str(root), verbose=False)
    assert summary(ds.query) == [("003.jpg", 3, 0, 0), ("119.jpg", 119, 0, 0)]
    assert summary(ds.gallery) == [("003.jpg", 3, 1, 0), ("119.jpg", 119, 1, 0)]


def test_partial_file_name_that_does_not_parse_is_named(root):
    trees.partial_ilids(root)
    trees.touch(root / "Partial_iLIDS" / "whole_body_images" / "person_a.jpg")
    with pytest.raises(DatasetError, match=r"person_a.jpg does not encode a person id; expected '<pid>.jpg'"):
        build_dataset("partial_ilids", str(root), verbose=False)


def test_p_dukemtmc_trains_on_whole_and_occluded_crops_with_fixed_cameras(tmp_path):
    trees.p_dukemtmc(tmp_path)
    ds = build_dataset("p_dukemtmc", str(tmp_path), verbose=False)
    # whole-body crops (camera 1) first, then the occluded ones (camera 0); pids relabelled 5 -> 0, 9 -> 1
    assert [(pid, cam) for _, pid, cam, _ in ds.train] == [(0, 1), (0, 1), (1, 1), (1, 1),
                                                          (0, 0), (0, 0), (1, 0), (1, 0)]
    assert all("train/whole_body_images" in p for p, *_ in ds.train[:4])
    assert all("test/occluded_body_images" in p and cam == 0 for p, _, cam, _ in ds.query)
    assert all("test/whole_body_images" in p and cam == 1 for p, _, cam, _ in ds.gallery)
    assert sorted({pid for _, pid, _, _ in ds.query}) == [12, 40]
    assert (ds.num_train_pids, ds.num_train_cams) == (2, 2)


def test_msmt17_trains_on_train_plus_val(tmp_path):
    trees.msmt17(tmp_path)
    ds = build_dataset("msmt17", str(tmp_path), verbose=False)
    assert summary(ds.train) == [
        ("0000_000_01_0303morning_0015_0.jpg", 0, 0, 0), ("0000_001_05_0303morning_0036_1.jpg", 0, 4, 0),
        ("0001_000_15_0303noon_0100_0.jpg", 1, 14, 0), ("0001_002_03_0303noon_0120_1.jpg", 1, 2, 0),
        ("0002_000_07_0303afternoon_0001_0.jpg", 2, 6, 0),
    ]
    assert [(pid, cam) for _, pid, cam, _ in ds.query] == [(0, 1), (1, 8)]
    assert [(pid, cam) for _, pid, cam, _ in ds.gallery] == [(0, 3), (1, 10), (2, 11)]
    first = tmp_path / "msmt17" / "MSMT17_V1" / "train" / "0000" / "0000_000_01_0303morning_0015_0.jpg"
    assert ds.train[0][0] == str(first)


def test_msmt17_without_val(tmp_path):
    trees.msmt17(tmp_path)
    ds = build_dataset("msmt17", str(tmp_path), verbose=False, use_val=False)
    assert [pid for _, pid, _, _ in ds.train] == [0, 0, 1] and ds.num_train_pids == 2


def test_msmt17_v2_folders(tmp_path):
    trees.msmt17(tmp_path, "MSMT17_V2")
    ds = build_dataset("msmt17", str(tmp_path), verbose=False)
    assert len(ds.train) == 5 and all("mask_train_v2" in p for p, *_ in ds.train)
    assert all("mask_test_v2" in p for p, *_ in ds.query + ds.gallery)


def test_msmt17_list_line_naming_a_missing_image_names_both(tmp_path):
    base = trees.msmt17(tmp_path)
    (base / "test" / "0001" / "0001_003_11_0303noon_0002_0.jpg").unlink()
    with pytest.raises(DatasetError) as err:
        build_dataset("msmt17", str(tmp_path), verbose=False)
    message = str(err.value)
    assert "list_gallery.txt line 2" in message and "0001/0001_003_11_0303noon_0002_0.jpg" in message
    assert "does not exist" in message


def test_msmt17_bad_lines_are_named(tmp_path):
    base = trees.msmt17(tmp_path)
    with open(base / "list_query.txt", "a") as f:
        f.write("0003/0003_000_99_0303noon_0001_0.jpg 3\n")
    bad_camera = r"0003_000_99_0303noon_0001_0.jpg \(.*list_query.txt line 3\).*camera 1..15"
    with pytest.raises(DatasetError, match=bad_camera):
        build_dataset("msmt17", str(tmp_path), verbose=False)
    (base / "list_query.txt").write_text("0000/0000_000_02_0303morning_0001_0.jpg \u00b2\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"list_query.txt line 1: expected '<relative image path> <pid>'"):
        build_dataset("msmt17", str(tmp_path), verbose=False)
    (base / "list_query.txt").write_text("0000/0000_000_02_0303morning_0001_0.jpg\n")
    with pytest.raises(DatasetError, match=r"list_query.txt line 1: expected '<relative image path> <pid>'"):
        build_dataset("msmt17", str(tmp_path), verbose=False)


def test_msmt17_missing_shows_the_tree(tmp_path):
    with pytest.raises(DatasetError) as err:
        build_dataset("msmt17", str(tmp_path), verbose=False)
    message = str(err.value)
    assert "msmt17/MSMT17_V1/list_train.txt" in message and "msmt17/MSMT17_V1/test/<pid>/" in message
    assert "MSMT17_V2" in message


def test_a_test_set_does_not_need_its_training_folder(tmp_path):
    trees.partial_reid(tmp_path)  # no market1501/ at all
    ds = build_test_set("partial_reid", str(tmp_path), verbose=False)
    assert ds.train == [] and len(ds.query) == 6 and len(ds.gallery) == 6
    with pytest.raises(DatasetError, match="market1501/bounding_box_train not found"):
        build_dataset("partial_reid", str(tmp_path), verbose=False)


def test_empty_split_is_an_error_naming_it(root):
    trees.partial_reid(root)
    for f in (root / "Partial_REID" / "whole_body_images").iterdir():
        f.unlink()
    with pytest.raises(DatasetError, match=r"whole_body_images holds no .jpg images \(the gallery split is empty\)"):
        build_dataset("partial_reid", str(root), verbose=False)


def test_query_identities_absent_from_the_gallery_are_fine(root):
    trees.partial_reid(root, pids=(1, 2))
    trees.touch(root / "Partial_REID" / "partial_body_images" / "007_01.jpg")
    ds = build_dataset("partial_reid", str(root), verbose=False)
    assert 7 in {pid for _, pid, _, _ in ds.query} and 7 not in {pid for _, pid, _, _ in ds.gallery}


def test_counts_that_differ_from_the_published_ones_give_one_warning(root, caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("mbf"), "propagate", True)
    trees.partial_ilids(root, pids=(1, 2))
    with caplog.at_level(logging.WARNING, logger="mbf"):
        build_dataset("partial_ilids", str(root), verbose=False)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "train: expected 751 ids / 12936 images, found 3 / 5" in warnings[0]
    assert "query: expected 119 ids / 119 images, found 2 / 2" in warnings[0]
    assert "gallery: expected 119 ids / 119 images, found 2 / 2" in warnings[0]


def test_a_tree_with_the_published_counts_gives_no_warning(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("mbf"), "propagate", True)
    trees.partial_ilids(tmp_path, pids=range(1, 120))
    with caplog.at_level(logging.WARNING, logger="mbf"):
        build_test_set("partial_ilids", str(tmp_path), verbose=False)
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_every_benchmark_is_registered():
    assert set(DATASETS) >= {"market1501", "dukemtmc", "occ_duke", "occ_reid", "partial_reid", "partial_ilids",
                             "p_dukemtmc", "msmt17", "custom", "synthetic_occ"}


def test_a_new_reader_is_registered_like_the_others(tmp_path):
    @register_dataset("tiny_own_layout")
    class Tiny(DatasetReader):
        def sources(self):
            rule = pid_before_underscore("3_a.png")
            return {split: FolderSource(self.root / split, (".png",), rule, camid=i)
                    for i, split in enumerate(("train", "query", "gallery"))}

    try:
        for split in ("train", "query", "gallery"):
            trees.touch(tmp_path / split / "3_a.png")
        ds = build_dataset("tiny_own_layout", str(tmp_path), verbose=False)
        assert triples(ds.train + ds.query + ds.gallery) == [(0, 0, 0), (3, 1, 0), (3, 2, 0)]
        with pytest.raises(ValueError, match="registered already"):
            register_dataset("tiny_own_layout")(Tiny)
        assert register_dataset("tiny_own_layout", replace=True)(Tiny) is DATASETS.get("tiny_own_layout")
    finally:
        DATASETS.unregister("tiny_own_layout")
