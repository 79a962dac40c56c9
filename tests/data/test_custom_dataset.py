"""A user's own crops described by train.csv / query.csv / gallery.csv."""
import pytest

from mbf.data import build_dataset, build_test_set
from mbf.errors import DatasetError

from .benchmark_trees import touch


def write_lists(folder, rows: dict):
    folder.mkdir(parents=True, exist_ok=True)
    for split, lines in rows.items():
        (folder / f"{split}.csv").write_text("path,pid,camid\n" + "".join(f"{line}\n" for line in lines), encoding="utf-8")
        for line in lines:
            path = line.split(",")[0]
            if not path.startswith("/"):
                touch(folder / path)


ROWS = {
    "train": ["imgs/a1.jpg,17,0", "imgs/a2.jpg,17,1", "imgs/b1.png,4,1"],
    "query": ["q/x.jpg,100,0"],
    "gallery": ["g/x.jpg,100,1", "g/y.jpg,200,0"],
}


def test_own_data_from_csv_lists(tmp_path):
    write_lists(tmp_path / "custom", ROWS)
    ds = build_dataset("custom", str(tmp_path), verbose=False)
    base = tmp_path / "custom"
    assert ds.train == [(f"{base}/imgs/a1.jpg", 1, 0, 0), (f"{base}/imgs/a2.jpg", 1, 1, 0),
                        (f"{base}/imgs/b1.png", 0, 1, 0)]
    assert ds.query == [(f"{base}/q/x.jpg", 100, 0, 0)]
    assert [(pid, cam) for _, pid, cam, _ in ds.gallery] == [(100, 1), (200, 0)]


def test_own_data_in_another_folder_with_absolute_paths(tmp_path):
    absolute = touch(tmp_path / "elsewhere" / "z.jpg")
    rows = dict(ROWS, gallery=[f"{absolute},100,1"])
    write_lists(tmp_path / "shop_cameras", rows)
    ds = build_dataset("custom", str(tmp_path), verbose=False, folder="shop_cameras")
    assert ds.gallery == [(str(absolute), 100, 1, 0)]


def test_own_test_set_needs_no_train_list(tmp_path):
    write_lists(tmp_path / "custom", {k: ROWS[k] for k in ("query", "gallery")})
    ds = build_test_set("custom", str(tmp_path), verbose=False)
    assert len(ds.query) == 1 and len(ds.gallery) == 2
    tree_line = r"custom/train.csv   rows path,pid,camid   \(train\)"
    with pytest.raises(DatasetError, match=r"(?s)file .*custom/train.csv not found.*" + tree_line):
        build_dataset("custom", str(tmp_path), verbose=False)


def test_missing_image_names_the_list_line_and_the_image(tmp_path):
    write_lists(tmp_path / "custom", ROWS)
    (tmp_path / "custom" / "g" / "y.jpg").unlink()
    with pytest.raises(DatasetError, match=r"gallery.csv line 3 names .*custom/g/y.jpg, which does not exist"):
        build_dataset("custom", str(tmp_path), verbose=False)


@pytest.mark.parametrize("bad, message", [
    ("imgs/a1.jpg,seventeen,0", r"train.csv line 2: expected 'path,pid,camid' with pid and camid integers"),
    ("imgs/a1.jpg,17", r"train.csv line 2: expected 'path,pid,camid'"),
    ("imgs/a1.jpg,17,-1", r"train.csv line 2: expected 'path,pid,camid'"),
    ("imgs/a1.jpg,17\u00b2,0", r"train.csv line 2: expected 'path,pid,camid'"),  # a digit int() does not read
])
def test_bad_rows_are_named(tmp_path, bad, message):
    write_lists(tmp_path / "custom", dict(ROWS, train=[bad]))
    with pytest.raises(DatasetError, match=message):
        build_dataset("custom", str(tmp_path), verbose=False)


def test_header_is_required(tmp_path):
    write_lists(tmp_path / "custom", ROWS)
    (tmp_path / "custom" / "query.csv").write_text("q/x.jpg,100,0\n")
    with pytest.raises(DatasetError, match=r"query.csv line 1: expected the header 'path,pid,camid'"):
        build_dataset("custom", str(tmp_path), verbose=False)


def test_a_list_saved_with_a_byte_order_mark_is_read(tmp_path):
    """Spreadsheets save "CSV UTF-8" with a BOM before the header."""
    write_lists(tmp_path / "custom", ROWS)
    query = tmp_path / "custom" / "query.csv"
    query.write_bytes(b"\xef\xbb\xbf" + query.read_bytes())
    ds = build_dataset("custom", str(tmp_path), verbose=False)
    assert ds.query == [(f"{tmp_path / 'custom'}/q/x.jpg", 100, 0, 0)]


def test_training_cameras_must_be_numbered_from_zero(tmp_path):
    write_lists(tmp_path / "custom", dict(ROWS, train=["imgs/a1.jpg,17,0", "imgs/a2.jpg,17,5"]))
    with pytest.raises(DatasetError, match=r"train.csv uses cameras \[0, 5\]; number the training cameras 0..1"):
        build_dataset("custom", str(tmp_path), verbose=False)


def test_empty_list_is_an_error_naming_the_split(tmp_path):
    write_lists(tmp_path / "custom", dict(ROWS, query=[]))
    with pytest.raises(DatasetError, match=r"query.csv lists no images \(the query split is empty\)"):
        build_dataset("custom", str(tmp_path), verbose=False)
