"""mbf extract / mbf search with a tiny randomly initialised model saved as a checkpoint."""
import os

import numpy as np
import torch

from mbf.cli import main


def last_table(out: str) -> list[list[str]]:
    lines = out.splitlines()
    header = [line.split() for line in lines].index(["rank", "distance", "path"])  # log lines may come first
    return [line.split() for line in lines[header + 1:]]


def test_extract_then_search_finds_the_query_itself_first(tiny, capsys, monkeypatch):
    weights = tiny.weights()
    paths = tiny.images("gallery")
    (tiny.tmp / "gallery" / "notes.txt").write_text("not an image")
    out = tiny.tmp / "feats.npz"
    assert tiny.extract(weights, tiny.tmp / "gallery", out) == 0
    with np.load(out) as data:
        assert data["feats"].shape == (6, 32 * 9) and data["feats"].dtype == np.float32
        assert data["paths"].tolist() == paths  # every jpg/png/tif, recursively, sorted; the .txt left out
        assert np.allclose(np.linalg.norm(data["feats"], axis=1), 1.0, atol=1e-5)  # TEST.FEAT_NORM 'yes'
        assert str(data["config_file"]) == tiny.config and str(data["weights"]) == weights
    assert not (tiny.tmp / "feats.npz.parts").exists()  # the shards are merged and removed
    capsys.readouterr()
    monkeypatch.chdir(tiny.tmp / "gallery")  # the gallery carries absolute config and weights paths
    assert main(["search", "--gallery", str(out), "--query", paths[3], "--topk", "3"]) == 0
    ranked = last_table(capsys.readouterr().out)
    assert len(ranked) == 3
    assert ranked[0][2] == paths[3] and float(ranked[0][1]) < 1e-4
    distances = [float(r[1]) for r in ranked]
    assert distances == sorted(distances) and [r[0] for r in ranked] == ["1", "2", "3"]


def test_bad_input_gives_one_clear_line(tiny, capsys):
    tiny.images("gallery", 2)
    (tiny.tmp / "empty").mkdir()
    out = tiny.tmp / "f.npz"
    gallery = tiny.tmp / "gallery"

    def error(code, one_line=True):
        lines = [line for line in capsys.readouterr().err.strip().splitlines() if "it/s]" not in line]  # no tqdm
        assert code == 2 and lines and lines[0].startswith("mbf ") and (len(lines) == 1 or not one_line), lines
        return lines[0]

    assert "nope.pth" in error(tiny.extract(str(tiny.tmp / "nope.pth"), gallery, out))
    weights = tiny.weights()
    assert "no images" in error(tiny.extract(weights, tiny.tmp / "empty", out))
    assert "not found" in error(tiny.extract(weights, tiny.tmp / "missing", out))
    (tiny.tmp / "corrupt.pth").write_bytes(b"\x00garbage")
    # torch's own multi-line explanation follows the first line here (modeling's read_state_dict)
    assert "cannot read" in error(tiny.extract(str(tiny.tmp / "corrupt.pth"), gallery, out), False)
    other = tiny.weights("wide.pth", ["MODEL.VIT_EMBED_DIM", "48"])
    assert "wide.pth" in error(tiny.extract(other, gallery, out))  # weights of another model
    torch.save({"something": torch.zeros(3)}, tiny.tmp / "foreign.pth")
    assert "foreign.pth" in error(tiny.extract(str(tiny.tmp / "foreign.pth"), gallery, out))
    (gallery / "broken.jpg").write_bytes(b"not a jpeg")
    assert "broken.jpg" in error(tiny.extract(weights, gallery, out))
    assert not out.exists()

    assert "mbf extract" in error(main(["search", "--gallery", str(tiny.tmp / "missing.npz"), "--query", "x.jpg"]))
    np.savez(tiny.tmp / "other.npz", x=np.zeros(3))
    assert "not a gallery" in error(main(["search", "--gallery", str(tiny.tmp / "other.npz"), "--query", "x.jpg"]))
    os.remove(gallery / "broken.jpg")
    assert tiny.extract(weights, gallery, out) == 0  # the failed attempt finished no shard: nothing to resume
    capsys.readouterr()
    assert "already exists" in error(tiny.extract(weights, gallery, out))  # never overwritten silently
    assert tiny.extract(weights, gallery, out, "--overwrite") == 0
    capsys.readouterr()
    assert "x.jpg" in error(main(["search", "--gallery", str(out), "--query", str(tiny.tmp / "x.jpg")]))
    assert "--topk" in error(main(["search", "--gallery", str(out), "--query", "x.jpg", "--topk", "0"]))
    # a query model whose descriptor size differs from the gallery's
    query = str(next(gallery.rglob("*.jpg")))
    assert "288" in error(main(["search", "--gallery", str(out), "--query", query, "--weights", other,
                               "--config_file", tiny.config, *tiny.opts, "MODEL.VIT_EMBED_DIM", "48"]))


def test_search_refuses_a_query_model_that_normalises_otherwise_than_the_gallery(tiny, capsys):
    weights = tiny.weights()
    paths = tiny.images("gallery", 3)
    out = tiny.tmp / "raw.npz"
    assert tiny.extract(weights, tiny.tmp / "gallery", out, extra=["TEST.FEAT_NORM", "no"]) == 0
    capsys.readouterr()
    own = ["--weights", weights, "--config_file", tiny.config, *tiny.opts]
    assert main(["search", "--gallery", str(out), "--query", paths[0], *own]) == 2  # FEAT_NORM 'yes' by default
    err = capsys.readouterr().err
    assert "L2-normalised (TEST.FEAT_NORM)" in err and "raw.npz are not normalised" in err
    assert main(["search", "--gallery", str(out), "--query", paths[0], *own, "TEST.FEAT_NORM", "no"]) == 0
    assert last_table(capsys.readouterr().out)[0][2] == paths[0]
