"""mbf extract / mbf search with a tiny randomly initialised model saved as a checkpoint."""
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mbf.cli import main
from mbf.config import load_config
from mbf.modeling import build_model

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "configs" / "Synthetic" / "mbf_tiny.yml")
OPTS = ["MODEL.DEVICE", "cpu", "MODEL.VIT_EMBED_DIM", "32", "MODEL.VIT_DEPTH", "2", "MODEL.VIT_NUM_HEADS", "2",
        "MODEL.DECODER_FFN_DIM", "32", "INPUT.SIZE_TRAIN", "[64, 32]", "INPUT.SIZE_TEST", "[64, 32]",
        "DATALOADER.NUM_WORKERS", "0", "TEST.IMS_PER_BATCH", "4"]


def make_weights(tmp_path, name="model.pth", opts=OPTS) -> str:
    torch.manual_seed(0)
    model = build_model(load_config(CONFIG, opts), num_classes=5, camera_num=3, view_num=1, pretrained=False)
    path = tmp_path / name
    torch.save(model.state_dict(), path)
    return str(path)


def make_images(folder: Path, n: int = 6) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        ext = (".jpg", ".png", ".tif")[i % 3]
        p = folder / ("sub" if i % 2 else "") / f"{i:04d}_c{i % 3 + 1}s1_000001_01{ext}"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (80, 40, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    (folder / "notes.txt").write_text("not an image")
    return sorted(paths)


def extract(tmp_path, weights, images, out, opts=OPTS):
    return main(["extract", "--config_file", CONFIG, "--weights", weights, "--images", str(images), "--out", str(out),
                 *opts])


def test_extract_then_search_finds_the_query_itself_first(tmp_path, capsys, monkeypatch):
    weights = make_weights(tmp_path)
    paths = make_images(tmp_path / "gallery")
    out = tmp_path / "feats.npz"
    assert extract(tmp_path, weights, tmp_path / "gallery", out) == 0
    with np.load(out) as data:
        assert data["feats"].shape == (6, 32 * 9) and data["feats"].dtype == np.float32
        assert data["paths"].tolist() == paths  # every jpg/png/tif, recursively, sorted; the .txt left out
        assert np.allclose(np.linalg.norm(data["feats"], axis=1), 1.0, atol=1e-5)  # TEST.FEAT_NORM 'yes'
        assert str(data["config_file"]) == CONFIG and str(data["weights"]) == weights
    capsys.readouterr()
    monkeypatch.chdir(tmp_path / "gallery")  # the index carries absolute config and weights paths
    assert main(["search", "--gallery", str(out), "--query", paths[3], "--topk", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = [line.split() for line in lines].index(["rank", "distance", "path"])  # log lines may come first
    ranked = [line.split() for line in lines[header + 1:]]
    assert len(ranked) == 3
    assert ranked[0][2] == paths[3] and float(ranked[0][1]) < 1e-4
    distances = [float(r[1]) for r in ranked]
    assert distances == sorted(distances) and [r[0] for r in ranked] == ["1", "2", "3"]


def test_bad_input_gives_one_clear_line(tmp_path, capsys):
    make_images(tmp_path / "gallery", 2)
    (tmp_path / "empty").mkdir()
    out = tmp_path / "f.npz"

    def error(code, one_line=True):
        lines = [line for line in capsys.readouterr().err.strip().splitlines() if "it/s]" not in line]  # no tqdm
        assert code == 2 and lines and lines[0].startswith("mbf ") and (len(lines) == 1 or not one_line), lines
        return lines[0]

    assert "nope.pth" in error(extract(tmp_path, str(tmp_path / "nope.pth"), tmp_path / "gallery", out))
    weights = make_weights(tmp_path)
    assert "no images" in error(extract(tmp_path, weights, tmp_path / "empty", out))
    assert "not found" in error(extract(tmp_path, weights, tmp_path / "missing", out))
    (tmp_path / "corrupt.pth").write_bytes(b"\x00garbage")
    # torch's own multi-line explanation follows the first line here (modeling's read_state_dict)
    assert "cannot read" in error(extract(tmp_path, str(tmp_path / "corrupt.pth"), tmp_path / "gallery", out), False)
    other = make_weights(tmp_path, "wide.pth", OPTS[:2] + ["MODEL.VIT_EMBED_DIM", "48"] + OPTS[4:])
    assert "wide.pth" in error(extract(tmp_path, other, tmp_path / "gallery", out))  # weights of another model
    torch.save({"something": torch.zeros(3)}, tmp_path / "foreign.pth")
    assert "foreign.pth" in error(extract(tmp_path, str(tmp_path / "foreign.pth"), tmp_path / "gallery", out))
    (tmp_path / "gallery" / "broken.jpg").write_bytes(b"not a jpeg")
    assert "broken.jpg" in error(extract(tmp_path, weights, tmp_path / "gallery", out))
    assert not out.exists()

    assert "mbf extract" in error(main(["search", "--gallery", str(tmp_path / "missing.npz"), "--query", "x.jpg"]))
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    assert "not a gallery" in error(main(["search", "--gallery", str(tmp_path / "other.npz"), "--query", "x.jpg"]))
    os.remove(tmp_path / "gallery" / "broken.jpg")
    assert extract(tmp_path, weights, tmp_path / "gallery", out) == 0
    capsys.readouterr()
    assert "x.jpg" in error(main(["search", "--gallery", str(out), "--query", str(tmp_path / "x.jpg")]))
    assert "--topk" in error(main(["search", "--gallery", str(out), "--query", "x.jpg", "--topk", "0"]))
