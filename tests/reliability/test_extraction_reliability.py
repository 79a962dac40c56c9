"""`mbf extract`, `mbf index` and `mbf search` under attack: two extractions to one output, a full
disk, what a killed run leaves, JSON files that are no objects, file names that are not UTF-8."""
from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mbf.retrieval.extraction as extraction
from mbf.cli import main
from mbf.errors import BusyError, InputError
from mbf.retrieval import Gallery, list_images
from mbf.retrieval.faiss_index import SearchIndex, build_index
from mbf.retrieval.gallery import write_npz

from .test_input_files import cli_error  # the one-line check of a failed command

META = {"config_file": "", "weights": "", "opts": [], "feat_norm": False}


def tree(folder: Path) -> dict:
    """Every file under ``folder`` (hidden ones too) with its content."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


class FakeEmbedder:
    """Descriptors made from the file names: extraction's bookkeeping without a model."""

    dim = 2

    def file_loader(self, files, workers):
        return [(files[i:i + 64], None) for i in range(0, len(files), 64)]

    def embed_loaded(self, names, cams):
        return np.array([[len(name), sum(map(ord, name))] for name in names], np.float32)


# ------------------------------------------------------------------------------------ one extraction per output
@pytest.mark.parametrize("name", ["g.npz", "folder_gallery"])
def test_a_second_extract_to_the_same_output_is_refused_with_the_holders_pid_and_touches_nothing(
        tiny, capsys, lock_holder, name):
    tiny.images("gallery", 3)
    out = tiny.tmp / name
    lock_file = tiny.tmp / f".{name}.mbf-lock"  # beside the output, for both layouts
    holder = lock_holder(lock_file)
    before = tree(tiny.tmp)
    line = cli_error(tiny.extract(str(tiny.tmp / "model.pth"), tiny.tmp / "gallery", out), capsys)
    assert f"gallery {out} is in use by another process (PID {holder.pid}, started " in line
    assert "nothing was written" in line
    assert tree(tiny.tmp) == before and not out.exists()


def test_an_extraction_holds_its_output_until_it_ends_and_leaves_the_folder_clean(tiny, capsys, lock_holder):
    weights = tiny.weights()
    tiny.images("gallery", 3)
    out = tiny.tmp / "big"
    holder = lock_holder(tiny.tmp / ".big.mbf-lock")
    assert tiny.extract(weights, tiny.tmp / "gallery", out) == 2
    holder.stdin.close()
    holder.wait(timeout=60)  # the holder is gone: its lock went with it
    assert tiny.extract(weights, tiny.tmp / "gallery", out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["feats.npy", "gallery.json", "paths.txt"]
    assert not (tiny.tmp / ".big.mbf-lock").exists()


def test_only_one_holder_removes_what_a_killed_extraction_left(tmp_path):
    folder, npz = extraction.OutputLayout(tmp_path / "g"), extraction.OutputLayout(tmp_path / "h.npz")
    stale = [folder.work / ".shard-000001.npy.tmp-999-0a1b2c", folder.out / ".feats.npy.tmp-999-0a1b2c",
             npz.work / ".manifest.json.tmp-999-0a1b2c", tmp_path / ".h.npz.tmp-999-0a1b2c"]
    kept = [folder.work / "shard-000000.npy", tmp_path / ".other.npz.tmp-999-0a1b2c"]  # a finished shard; not ours
    for path in stale + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    for layout in (folder, npz):
        with layout.lock():  # another extraction holds it: nothing is removed
            with pytest.raises(BusyError), extraction.hold_output(layout):
                pass
        assert all(p.exists() for p in stale)
    for layout in (folder, npz):
        with extraction.hold_output(layout):
            with extraction.hold_output(layout):  # re-entrant within the process that holds it
                assert layout.lock_file.exists()
            assert layout.lock_file.exists()  # still held: the inner block did not release it
        assert not layout.lock_file.exists()
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)


# ------------------------------------------------------------------------------------ a full disk
def test_a_full_disk_while_writing_a_shard_is_one_line_and_the_rerun_resumes_to_the_same_gallery(
        tiny, capsys, monkeypatch):
    weights = tiny.weights()
    tiny.images("gallery", 7)
    whole = tiny.tmp / "whole.npz"
    assert tiny.extract(weights, tiny.tmp / "gallery", whole, "--shard_size", "4") == 0  # shards = batches of 4

    real_save, calls = np.save, []

    def full_disk(file, arr, *args, **kwargs):
        calls.append(file)
        if len(calls) == 2:  # the second shard: half of it reaches the disk, then the disk is full
            file.write(b"\x93NUMPY half a shard")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(file, arr, *args, **kwargs)

    monkeypatch.setattr(np, "save", full_disk)
    out = tiny.tmp / "resumed"
    line = cli_error(tiny.extract(weights, tiny.tmp / "gallery", out, "--shard_size", "4"), capsys)
    assert f"cannot write {out / 'parts' / 'shard-000001.npy'}: the disk is full (" in line and " free in " in line
    assert sorted(p.name for p in out.rglob("*")) == ["manifest.json", "parts", "shard-000000.npy"]  # no half shard

    monkeypatch.setattr(np, "save", real_save)
    assert tiny.extract(weights, tiny.tmp / "gallery", out, "--shard_size", "4") == 0
    assert "1 shard (3 images) to embed (1 finished before, skipped)" in capsys.readouterr().out
    np.testing.assert_array_equal(np.asarray(Gallery.load(out).feats), Gallery.load(whole).feats)
    assert Gallery.load(out).paths == Gallery.load(whole).paths


def test_the_log_counts_shards_and_images_in_words(tmp_path, mbf_log):
    paths = [f"{i:04d}_c1s1_000001_01.jpg" for i in range(750)]
    extraction.extract_gallery(FakeEmbedder(), paths, tmp_path / "one.npz", {}, META, progress=False)
    extraction.extract_gallery(FakeEmbedder(), paths[:1], tmp_path / "two.npz", {}, META, progress=False)
    extraction.extract_gallery(FakeEmbedder(), paths, tmp_path / "three", {}, META, shard_size=300, progress=False)
    said = [r.getMessage() for r in mbf_log.records if "to embed" in r.getMessage()]
    assert said == ["rank 0 of 1: 1 shard (750 images) to embed", "rank 0 of 1: 1 shard (1 image) to embed",
                    "rank 0 of 1: 3 shards (750 images) to embed"]
    assert Gallery.load(tmp_path / "three").paths == paths


def test_a_failed_index_write_keeps_the_old_index_and_leaves_no_temporary(tmp_path, capsys, monkeypatch):
    import faiss

    x = np.random.default_rng(0).standard_normal((10, 8)).astype(np.float32)
    write_npz(tmp_path / "g.npz", x, [f"{i}.jpg" for i in range(10)], META)
    assert main(["index", "--gallery", str(tmp_path / "g.npz"), "--out", str(tmp_path / "idx")]) == 0
    before = tree(tmp_path)

    def full_disk(index, path):
        Path(path).write_bytes(b"half an index")
        raise RuntimeError(f"Error in faiss::FileIOWriter: 'ret == (n)' failed: write error in {path}: "
                           "No space left on device")

    monkeypatch.setattr(faiss, "write_index", full_disk)
    capsys.readouterr()
    code = main(["index", "--gallery", str(tmp_path / "g.npz"), "--out", str(tmp_path / "idx"), "--overwrite"])
    line = cli_error(code, capsys)
    assert f"cannot write {tmp_path / 'idx'}: FAISS could not write index.faiss" in line
    assert "No space left on device" in line and "the previous idx is unchanged" in line
    assert tree(tmp_path) == before


# ------------------------------------------------------------------------------------ JSON files
def _flat_index(folder: Path) -> Path:
    x = np.random.default_rng(0).standard_normal((10, 8)).astype(np.float32)
    return build_index(Gallery(x, [f"{i}.jpg" for i in range(10)], feat_norm=False), "flat").save(
        folder, [f"{i}.jpg" for i in range(10)])


@pytest.mark.parametrize("content, expected", [
    ("[1, 2]", ("holds an array; expected the description of an index written by `mbf index`: a JSON object with "
                "the keys kind, dim, metric, feat_norm")),
    ('{"kind": "flat"}', "lacks the keys dim, metric, feat_norm"),
    ('{"kind": "flat", "dim": "8", "metric": "l2", "feat_norm": false}', "'dim' is a string, expected an integer"),
    ('{"kind": "hnsw", "dim": 8, "metric": "l2", "feat_norm": false}', "'kind' is 'hnsw', expected one of flat, ivfpq"),
    ('{"kind": "flat", "dim": 8, "metric": "l2", "feat_norm": false, "gallery": {"opts": "x"}}',
     "'gallery': 'opts' is a string, expected an array"),
    ("{", "is unreadable"),
])
def test_an_index_json_that_is_no_index_description_is_one_line_naming_it(tmp_path, capsys, content, expected):
    index = _flat_index(tmp_path / "idx")
    (index / "index.json").write_text(content)
    line = cli_error(main(["search", "--gallery", str(index), "--query", "q.jpg"]), capsys)
    assert str(index / "index.json") in line and expected in line


@pytest.mark.parametrize("content, expected", [
    ('["config.yml"]', "holds an array; expected the gallery's description: a JSON object"),
    ('{"opts": 5}', "'opts' is an integer, expected an array"),
    ('{"feat_norm": "yes"}', "'feat_norm' is a string, expected true or false"),
])
def test_a_gallery_json_that_is_no_object_is_one_line_naming_it(tmp_path, capsys, content, expected):
    folder = tmp_path / "g"
    folder.mkdir()
    np.save(folder / "feats.npy", np.zeros((2, 4), np.float32))
    (folder / "paths.txt").write_text("a.jpg\nb.jpg")
    (folder / "gallery.json").write_text(content)
    for command in (["search", "--gallery", str(folder), "--query", "q.jpg"],
                    ["index", "--gallery", str(folder), "--out", str(tmp_path / "idx")]):
        line = cli_error(main(command), capsys)
        assert str(folder / "gallery.json") in line and expected in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g"]


def test_a_manifest_that_is_no_object_is_refused_naming_it(tmp_path):
    layout = extraction.OutputLayout(tmp_path / "g.npz")
    layout.work.mkdir()
    (layout.work / "manifest.json").write_text('["shards", 2]')
    with pytest.raises(InputError, match=r"g\.npz\.parts/manifest\.json holds an array; expected the manifest of an "
                                         r"extraction \(remove .*g\.npz\.parts to start over\): a JSON object"):
        extraction.prepare(layout, {"shards": 2}, extraction.DistInfo())


# ------------------------------------------------------------------------------------ names that are not UTF-8
@pytest.mark.skipif(sys.platform != "linux", reason="file names are bytes on Linux only")
def test_file_names_that_are_not_utf8_go_through_extract_index_and_search_exactly(tiny, capsys):
    weights = tiny.weights()
    images = tiny.tmp / "gallery"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name in (b"caf\xe9_c1s1_000001_01.jpg", b"0002_c2s1_000001_01.jpg", b"na\xefve_c3s1_000001_01.png"):
        Image.fromarray(rng.integers(0, 256, (80, 40, 3), dtype=np.uint8)).save(os.fsdecode(os.fsencode(images) + b"/" + name))
    listed = list_images(images)
    cafe = next(p for p in listed if os.fsencode(p).endswith(b"caf\xe9_c1s1_000001_01.jpg"))
    for out in (tiny.tmp / "g.npz", tiny.tmp / "folder"):
        assert tiny.extract(weights, images, out) == 0
        gallery = Gallery.load(out)
        assert gallery.paths == listed and all(os.path.isfile(p) for p in gallery.paths)  # exact round trip
        assert gallery.results(np.asarray(gallery.feats[listed.index(cafe)]), 1)[0][0][0] == cafe
    assert (tiny.tmp / "folder" / "paths.txt").read_bytes().split(b"\n") == [os.fsencode(p) for p in listed]

    assert main(["index", "--gallery", str(tiny.tmp / "folder"), "--out", str(tiny.tmp / "idx")]) == 0
    index = SearchIndex.load(tiny.tmp / "idx")
    assert index.paths == listed
    capsys.readouterr()
    assert main(["search", "--gallery", str(tiny.tmp / "idx"), "--query", cafe, "--topk", "1"]) == 0
    printed = capsys.readouterr().out.splitlines()[-1]
    assert printed.endswith("caf\\xe9_c1s1_000001_01.jpg")  # the byte that is not UTF-8 shown escaped
