"""Gallery and index files that do not hold what they should: one clear error naming the file."""
import numpy as np
import pytest

from mbf.errors import InputError
from mbf.retrieval import Gallery
from mbf.retrieval.faiss_index import SearchIndex, build_index
from mbf.retrieval.gallery import write_npz

META = {"config_file": "", "weights": "", "opts": [], "feat_norm": False}


def folder_gallery(folder, feats, paths_text):
    folder.mkdir()
    np.save(folder / "feats.npy", feats)
    (folder / "paths.txt").write_text(paths_text)
    (folder / "gallery.json").write_text("{}")
    return folder


def test_npz_gallery_with_fewer_paths_than_descriptors_is_refused(tmp_path):
    x = np.random.default_rng(0).standard_normal((10, 8)).astype(np.float32)
    write_npz(tmp_path / "g.npz", x, ["a.jpg", "b.jpg"], META)
    with pytest.raises(InputError, match=r"g\.npz: 10 descriptors but 2 paths"):
        Gallery.load(tmp_path / "g.npz")
    write_npz(tmp_path / "ok.npz", x[:2], ["a.jpg", "b.jpg"], META)
    assert Gallery.load(tmp_path / "ok.npz").results(x[:1], 5)[0][0][0] == "a.jpg"


def test_folder_gallery_paths_must_match_the_descriptors(tmp_path):
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(InputError, match=r"paths\.txt: 4 paths for 3 descriptors"):  # one too many: not cut off
        Gallery.load(folder_gallery(tmp_path / "more", x, "a\nb\nc\nd"))
    with pytest.raises(InputError, match=r"paths\.txt: 2 paths for 3 descriptors"):
        Gallery.load(folder_gallery(tmp_path / "fewer", x, "a\nb"))
    assert Gallery.load(folder_gallery(tmp_path / "newline", x, "a\nb\nc\n")).paths == ["a", "b", "c"]
    assert Gallery.load(folder_gallery(tmp_path / "empty", np.zeros((0, 4), np.float32), "")).paths == []


def test_index_folder_paths_must_match_the_index(tmp_path):
    x = np.random.default_rng(0).standard_normal((10, 8)).astype(np.float32)
    index = build_index(Gallery(x, [f"{i}.jpg" for i in range(10)], feat_norm=False), "flat")
    folder = index.save(tmp_path / "idx", ["a.jpg", "b.jpg"])
    with pytest.raises(InputError, match=r"paths\.txt: 2 paths for 10 descriptors"):
        SearchIndex.load(folder)
    folder = index.save(tmp_path / "idx", [f"{i}.jpg" for i in range(10)], overwrite=True)
    assert SearchIndex.load(folder).results(x[3], 1) == [[("3.jpg", pytest.approx(0.0, abs=1e-4))]]


def test_rows_of_a_truncated_descriptor_file_are_an_error_not_garbage(tmp_path):
    from mbf.retrieval.gallery import NpyRows

    x = np.arange(40, dtype=np.float32).reshape(10, 4)
    np.save(tmp_path / "feats.npy", x)
    rows = NpyRows(tmp_path / "feats.npy")
    size = (tmp_path / "feats.npy").stat().st_size
    with open(tmp_path / "feats.npy", "r+b") as f:  # rewritten under it: the last rows are gone
        f.truncate(size - 3 * 16)
    np.testing.assert_array_equal(rows[[0, 6]], x[[0, 6]])
    with pytest.raises(InputError, match=r"feats\.npy is shorter than its header says \(10 rows\): row 8"):
        rows[[1, 8]]


def test_a_closed_row_reader_releases_its_file_and_refuses_to_read(tmp_path):
    import os

    from mbf.retrieval.gallery import NpyRows

    x = np.arange(12, dtype=np.float16).reshape(3, 4)
    np.save(tmp_path / "feats.npy", x)
    with NpyRows(tmp_path / "feats.npy") as rows:
        fd = rows._fd
        np.testing.assert_array_equal(rows[[2]], x[[2]])
    with pytest.raises(OSError):
        os.fstat(fd)  # the descriptor was closed by the with block
    with pytest.raises(InputError, match=r"feats\.npy: the row reader is closed"):
        rows[[0]]
    rows.close()  # closing twice is harmless


def test_a_folder_gallery_of_1d_or_integer_descriptors_is_refused_at_load(tmp_path):
    with pytest.raises(InputError, match=r"feats\.npy: descriptors must be a float N x D array .*shape \(3,\)"):
        Gallery.load(folder_gallery(tmp_path / "flat", np.zeros(3, np.float32), "a\nb\nc"))
    with pytest.raises(InputError, match=r"feats\.npy: descriptors must be a float N x D array .*int64"):
        Gallery.load(folder_gallery(tmp_path / "ints", np.zeros((3, 4), np.int64), "a\nb\nc"))


def test_queries_of_the_wrong_shape_name_the_shape_expected(tmp_path):
    g = Gallery(np.zeros((3, 4), np.float32), ["a", "b", "c"])
    with pytest.raises(InputError, match=r"must be \[Q, 4\] or \[4\] .*got shape \(\)"):
        g.search(np.float32(1.0), 1)  # a scalar: was an IndexError while writing the message
    with pytest.raises(InputError, match=r"got shape \(2, 1, 4\)"):
        g.search(np.zeros((2, 1, 4)), 1)  # was "have 4 dims, the gallery has 4"
