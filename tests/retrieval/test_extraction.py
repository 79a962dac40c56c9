"""mbf extract at scale: shards, resume after an interruption, refusal of a foreign resume, torchrun ranks."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mbf.retrieval.extraction as extraction
from mbf.distributed import DistInfo
from mbf.retrieval import Gallery

REPO = Path(__file__).resolve().parents[2]


def feats(path) -> np.ndarray:
    return np.asarray(Gallery.load(path).feats, dtype=np.float32)


def test_killed_extraction_resumes_to_the_uninterrupted_result(tiny, monkeypatch, capsys):
    weights = tiny.weights()
    tiny.images("gallery", 7)
    gallery = tiny.tmp / "gallery"
    assert tiny.extract(weights, gallery, tiny.tmp / "whole.npz", "--shard_size", "2") == 0

    real_save, saved = extraction._save_shard, []

    def save_then_die(path, data):
        if len(saved) == 2:  # the third shard: killed while writing it (a partial temporary file remains)
            (path.parent / f".{path.name}.tmp-999-0a1b2c").write_bytes(b"partial")
            raise KeyboardInterrupt
        real_save(path, data)
        saved.append(path)

    monkeypatch.setattr(extraction, "_save_shard", save_then_die)
    out = tiny.tmp / "resumed.npz"
    assert tiny.extract(weights, gallery, out, "--shard_size", "2") == 130
    work = tiny.tmp / "resumed.npz.parts"
    assert not out.exists() and sorted(p.name for p in work.glob("shard-*.npy")) == ["shard-000000.npy", "shard-000001.npy"]
    finished = {p: p.read_bytes() for p in saved}

    # a resume with other weights is refused and touches nothing
    other = tiny.weights("other.pth", seed=1)
    capsys.readouterr()
    assert tiny.extract(other, gallery, out, "--shard_size", "2") == 2
    err = capsys.readouterr().err
    assert "weights_sha256" in err and "2 finished shards" in err
    assert {p: p.read_bytes() for p in saved} == finished and not out.exists()
    # ... and so is one with another config or shard size
    assert tiny.extract(weights, gallery, out, "--shard_size", "3") == 2
    assert tiny.extract(weights, gallery, out, "--shard_size", "2", extra=["MODEL.SIE_COE", "2.0"]) == 2
    assert "config.SIE_COE" in capsys.readouterr().err

    monkeypatch.setattr(extraction, "_save_shard", real_save)
    saved.clear()
    assert tiny.extract(weights, gallery, out, "--shard_size", "2") == 0
    assert "2 finished before, skipped" in capsys.readouterr().out
    assert not work.exists()
    np.testing.assert_allclose(feats(out), feats(tiny.tmp / "whole.npz"), atol=1e-6)
    assert Gallery.load(out).paths == Gallery.load(tiny.tmp / "whole.npz").paths


def test_folder_gallery_in_float16_is_memory_mapped_and_searchable(tiny):
    weights = tiny.weights()
    tiny.images("gallery", 5)
    assert tiny.extract(weights, tiny.tmp / "gallery", tiny.tmp / "ref.npz") == 0
    out = tiny.tmp / "big"
    assert tiny.extract(weights, tiny.tmp / "gallery", out, "--dtype", "float16", "--shard_size", "2") == 0
    assert sorted(p.name for p in out.iterdir()) == ["feats.npy", "gallery.json", "paths.txt"]
    g = Gallery.load(out)
    assert isinstance(g.feats, np.memmap) and g.feats.dtype == np.float16 and g.feats.shape == (5, 288)
    np.testing.assert_allclose(feats(out), feats(tiny.tmp / "ref.npz"), atol=2e-3)
    dist, idx = g.search(feats(tiny.tmp / "ref.npz")[3], topk=2)
    assert idx[0, 0] == 3 and dist[0, 0] < 1e-3
    (tiny.tmp / "other").mkdir()
    (tiny.tmp / "other" / "keep.txt").write_text("x")
    assert tiny.extract(weights, tiny.tmp / "gallery", tiny.tmp / "other") == 2  # not a gallery folder: refused


def test_ranks_take_disjoint_shards_that_cover_the_list(tmp_path):
    layout = extraction.OutputLayout(tmp_path / "g.npz")
    manifest = {"weights_sha256": "x", "shards": 7}
    assert extraction.prepare(layout, manifest, DistInfo()) == list(range(7))  # writes the work folder
    extraction._save_shard(extraction.shard_path(tmp_path / "g.npz.parts", 4), np.zeros((1, 2)))  # finished before
    taken = [extraction.prepare(layout, manifest, DistInfo(rank=r, world_size=3)) for r in (0, 1, 2)]
    assert taken == [[0, 3, 6], [1], [2, 5]]  # shard i on rank i % 3
    assert sorted(sum(taken, [])) == [0, 1, 2, 3, 5, 6]  # every unfinished shard once; shard 4 skipped
    assert all(not set(a) & set(b) for i, a in enumerate(taken) for b in taken[i + 1:])


def test_two_gloo_ranks_merge_to_the_single_process_result(tiny):
    weights = tiny.weights()
    tiny.images("gallery", 7)
    single = tiny.tmp / "single.npz"
    assert tiny.extract(weights, tiny.tmp / "gallery", single, "--shard_size", "2") == 0
    out = tiny.tmp / "two.npz"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "mbf",
           "extract", "--config_file", tiny.config, "--weights", weights, "--images", str(tiny.tmp / "gallery"),
           "--out", str(out), "--shard_size", "2", *tiny.opts]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rank 0 of 2: 2 shards" in done.stdout  # shards 0 and 2 on rank 0; 1 and 3 on rank 1
    np.testing.assert_allclose(feats(out), feats(single), atol=1e-6)
    assert Gallery.load(out).paths == Gallery.load(single).paths


def test_a_killed_merge_does_not_block_the_resume_of_a_folder_gallery(tiny, monkeypatch):
    weights = tiny.weights()
    tiny.images("gallery", 5)
    out = tiny.tmp / "big"
    real_merge = extraction.merge

    def killed_while_merging(layout, *args):  # what SIGKILL in the middle of the merge leaves (mbf.files names)
        (layout.out / ".feats.npy.tmp-999-0a1b2c").write_bytes(b"partial")
        (layout.out / ".paths.txt.tmp-999-3d4e5f").write_text("partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(extraction, "merge", killed_while_merging)
    assert tiny.extract(weights, tiny.tmp / "gallery", out, "--shard_size", "2") == 130
    monkeypatch.setattr(extraction, "merge", real_merge)
    assert tiny.extract(weights, tiny.tmp / "gallery", out, "--shard_size", "2") == 0
    assert sorted(p.name for p in out.iterdir()) == ["feats.npy", "gallery.json", "paths.txt"]
    assert Gallery.load(out).feats.shape == (5, 288)


def test_a_bad_shard_is_named_and_the_failed_merge_leaves_no_temporaries(tmp_path):
    from mbf.errors import InputError

    layout = extraction.OutputLayout(tmp_path / "g")
    manifest = {"shards": 2, "shard_size": 2, "dim": 4, "dtype": "float32"}
    layout.work.mkdir(parents=True)
    extraction._save_shard(extraction.shard_path(layout.work, 0), np.zeros((2, 4), np.float32))
    extraction._save_shard(extraction.shard_path(layout.work, 1), np.zeros((1, 5), np.float32))  # not (1, 4)
    with pytest.raises(InputError, match=r"shard-000001\.npy holds float32 \(1, 5\), expected float32 \(1, 4\)"):
        extraction.merge(layout, ["a", "b", "c"], manifest, {})
    assert sorted(p.name for p in layout.out.iterdir()) == ["parts"]
    layout.check(overwrite=False)  # still a gallery folder to resume into
    extraction._save_shard(extraction.shard_path(layout.work, 1), np.ones((1, 4), np.float32))
    extraction.merge(layout, ["a", "b", "c"], manifest, {})
    g = Gallery.load(layout.out)
    assert g.paths == ["a", "b", "c"] and np.asarray(g.feats).tolist() == [[0] * 4, [0] * 4, [1] * 4]


def test_an_empty_image_list_is_refused_before_anything_is_written(tmp_path):
    from types import SimpleNamespace

    from mbf.errors import InputError

    for out in (tmp_path / "g.npz", tmp_path / "folder"):
        with pytest.raises(InputError, match="no images to extract"):
            extraction.extract_gallery(SimpleNamespace(dim=4), [], out, {}, {}, progress=False)
    assert list(tmp_path.iterdir()) == []
