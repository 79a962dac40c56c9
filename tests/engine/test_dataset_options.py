"""Config keys that reach the dataset readers: MSMT17_USE_VAL, CUSTOM_DIR, TEST_NAMES."""
from mbf.config import get_cfg
from mbf.data.build import evaluation_set_names, load_dataset, load_test_set

from ..data import benchmark_trees as trees


def cfg_for(root, *opts):
    cfg = get_cfg()
    cfg.merge_from_list(["DATASETS.ROOT_DIR", str(root), *opts])
    return cfg


def test_msmt17_use_val_key_reaches_the_reader(tmp_path):
    trees.msmt17(tmp_path)
    assert len(load_dataset(cfg_for(tmp_path, "DATASETS.NAMES", "msmt17"), verbose=False).train) == 5
    no_val = cfg_for(tmp_path, "DATASETS.NAMES", "msmt17", "DATASETS.MSMT17_USE_VAL", False)
    assert len(load_dataset(no_val, verbose=False).train) == 3


def test_custom_dir_key_names_the_folder_of_the_lists(tmp_path):
    folder = tmp_path / "my_shop"
    folder.mkdir()
    for split in ("query", "gallery"):
        trees.touch(folder / f"{split}.jpg")
        (folder / f"{split}.csv").write_text(f"path,pid,camid\n{split}.jpg,1,{int(split == 'gallery')}\n")
    ds = load_test_set(cfg_for(tmp_path, "DATASETS.CUSTOM_DIR", "my_shop"), "custom", verbose=False)
    assert ds.query == [(f"{folder}/query.jpg", 1, 0, 0)] and ds.gallery == [(f"{folder}/gallery.jpg", 1, 1, 0)]


def test_test_names_default_to_the_training_set_and_keep_their_order(tmp_path):
    assert evaluation_set_names(cfg_for(tmp_path, "DATASETS.NAMES", "occ_duke")) == ["occ_duke"]
    listed = cfg_for(tmp_path, "DATASETS.TEST_NAMES", ["partial_reid", "occ_reid", "partial_reid"])
    assert evaluation_set_names(listed) == ["partial_reid", "occ_reid"]
