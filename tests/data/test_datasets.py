import logging

import pytest

from mbf.data import DATASETS, build_dataset
from mbf.data.datasets import get_reader
from mbf.errors import DatasetError
from mbf.registry import Registry


def test_market_drops_junk_keeps_distractors_and_relabels_in_pid_order(market_root):
    ds = build_dataset("market1501", str(market_root), verbose=False)
    assert [(p.split("/")[-1], pid, cam) for p, pid, cam, _ in ds.train] == [
        ("0002_c1s1_000451_03.jpg", 0, 0),
        ("0002_c2s1_000551_01.jpg", 0, 1),
        ("0005_c4s1_000301_01.jpg", 1, 3),
        ("0007_c3s1_000101_01.jpg", 2, 2),
        ("0007_c6s1_000201_01.jpg", 2, 5),
    ]
    assert sorted(pid for _, pid, _, _ in ds.gallery) == [0, 3, 4]  # distractor kept, junk dropped
    assert [pid for _, pid, _, _ in ds.query] == [3, 4]  # query pids unchanged
    assert (ds.num_train_pids, ds.num_train_vids) == (3, 1)


def test_camera_count_covers_the_highest_training_camera(market_root):
    """The fixture's training crops use cameras c1, c2, c3, c4 and c6 (no c5): the camera
    embedding needs 6 rows, or camera id 5 indexes past it."""
    ds = build_dataset("market1501", str(market_root), verbose=False)
    assert sorted({cam for _, _, cam, _ in ds.train}) == [0, 1, 2, 3, 5]
    assert ds.num_train_cams == 6
    assert all(cam < ds.num_train_cams for _, _, cam, _ in ds.train)


def test_statistics_table_is_logged(market_root, caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("mbf"), "propagate", True)  # a CLI run may have turned it off
    with caplog.at_level(logging.INFO, logger="mbf"):
        build_dataset("market1501", str(market_root))
    text = caplog.text
    assert "subset   | # ids | # images | # cameras" in text
    assert "train    |     3 |        5 |         5" in text


def test_occluded_reid_tests_on_tif_and_trains_on_market(market_root, images):
    images.split(market_root / "Occluded_REID" / "query", ["001_c1_01.tif", "002_c1_01.tif", "003_c2_x.jpg"])
    images.split(market_root / "Occluded_REID" / "bounding_box_test", ["001_c2_05.tif", "002_c3_02.tif"])
    ds = build_dataset("occ_reid", str(market_root), verbose=False)
    assert all(p.endswith(".tif") for p, *_ in ds.query + ds.gallery)
    assert len(ds.query) == 2 and len(ds.gallery) == 2  # the .jpg in query is not part of the split
    assert all("market1501" in p for p, *_ in ds.train) and ds.num_train_pids == 3


def test_duke_cameras_go_up_to_eight(tmp_path, images):
    root = tmp_path
    images.split(root / "Occluded_Duke" / "bounding_box_train", ["0001_c8_f0001.jpg", "0009_c1_f0002.jpg"])
    images.split(root / "Occluded_Duke" / "query", ["0005_c7_f0003.jpg"])
    images.split(root / "Occluded_Duke" / "bounding_box_test", ["0005_c2_f0004.jpg"])
    ds = build_dataset("occ_duke", str(root), verbose=False)
    assert [(pid, cam) for _, pid, cam, _ in ds.train] == [(0, 7), (1, 0)]


def test_camera_out_of_range_names_the_file(market_root, images):
    images.one(market_root / "market1501" / "query" / "0003_c7s1_000151_01.jpg")
    with pytest.raises(DatasetError, match="0003_c7s1_000151_01.jpg.*cameras 1..6"):
        build_dataset("market1501", str(market_root), verbose=False)


@pytest.mark.parametrize("name", ["0003_c12s1_000151_01.jpg", "0003_c10_f0000151.jpg"])
def test_a_camera_of_two_digits_is_read_whole_not_as_its_first_digit(market_root, images, name):
    images.one(market_root / "market1501" / "query" / name)
    with pytest.raises(DatasetError, match=f"{name} has camera 1[02]; this dataset has cameras 1..6"):
        build_dataset("market1501", str(market_root), verbose=False)


def test_bad_file_name_is_named(market_root, images):
    images.one(market_root / "market1501" / "bounding_box_train" / "holiday_photo.jpg")
    with pytest.raises(DatasetError, match="holiday_photo.jpg does not encode a person id"):
        build_dataset("market1501", str(market_root), verbose=False)


def test_missing_folder_shows_the_expected_tree(tmp_path):
    with pytest.raises(DatasetError) as err:
        build_dataset("occ_duke", str(tmp_path / "nowhere"), verbose=False)
    message = str(err.value)
    assert "Occluded_Duke/bounding_box_train" in message and "Occluded_Duke/query" in message
    assert "DATASETS.ROOT_DIR" in message


def test_an_unreadable_folder_is_one_error_naming_it(market_root, monkeypatch):
    """Simulated (root reads any folder, so chmod would prove nothing in CI)."""
    import os

    from mbf.data.datasets import base

    unreadable = str(market_root / "market1501" / "query")
    real_scandir = os.scandir

    def scandir(folder="."):
        if str(folder) == unreadable:
            raise PermissionError(13, "Permission denied", str(folder))
        return real_scandir(folder)

    monkeypatch.setattr(base.os, "scandir", scandir)
    with pytest.raises(DatasetError, match="cannot list the dataset folder .*query: Permission denied"):
        build_dataset("market1501", str(market_root), verbose=False)


def test_empty_split_is_an_error(market_root):
    for f in (market_root / "market1501" / "query").iterdir():
        f.unlink()
    with pytest.raises(DatasetError, match="query holds no .jpg images"):
        build_dataset("market1501", str(market_root), verbose=False)


def test_unknown_dataset_lists_the_known_ones(tmp_path):
    with pytest.raises(DatasetError) as err:
        build_dataset("cuhk03", str(tmp_path))
    assert all(name in str(err.value) for name in ("market1501", "dukemtmc", "occ_duke", "occ_reid"))
    assert set(DATASETS) >= {"market1501", "dukemtmc", "occ_duke", "occ_reid", "synthetic_occ"}


def test_datasets_are_a_registry_keyed_by_their_config_key():
    assert isinstance(DATASETS, Registry) and DATASETS.key == "DATASETS.NAMES"
    assert get_reader("market1501") is DATASETS.get("market1501")
    assert get_reader("market1501").name == "market1501"
    with pytest.raises(DatasetError, match=r"unknown dataset 'cuhk03' \(DATASETS.NAMES\); known: market1501, "):
        get_reader("cuhk03")
