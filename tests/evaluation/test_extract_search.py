"""mbf extract / mbf search with a tiny trained-format checkpoint."""
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


def make_weights(tmp_path) -> str:
    torch.manual_seed(0)
    model = build_model(load_config(CONFIG, OPTS), num_classes=5, camera_num=3, view_num=1)
    path = tmp_path / "model.pth"
    torch.save(model.state_dict(), path)
    return str(path)


def make_images(folder: Path, n: int = 6) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = folder / ("sub" if i % 2 else "") / f"{i:04d}_c1.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (80, 40, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    return sorted(paths)


def test_extract_then_search_finds_the_query_itself_first(tmp_path, capsys):
    weights = make_weights(tmp_path)
    paths = make_images(tmp_path / "gallery")
    out = tmp_path / "feats.npz"
    assert main(["extract", "--config_file", CONFIG, "--weights", weights, "--images", str(tmp_path / "gallery"),
                 "--out", str(out), *OPTS]) == 0
    with np.load(out) as data:
        assert data["feats"].shape == (6, 32 * 9) and sorted(data["paths"].tolist()) == paths
        assert np.allclose(np.linalg.norm(data["feats"], axis=1), 1.0, atol=1e-5)
    capsys.readouterr()
    assert main(["search", "--gallery", str(out), "--query", paths[3], "--topk", "3"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")]  # rank lines
    assert len(lines) == 3 and lines[0].split()[-1] == paths[3] and float(lines[0].split()[1]) < 1e-4


def test_extract_errors_are_one_line(tmp_path, capsys):
    make_images(tmp_path / "gallery", 2)
    (tmp_path / "empty").mkdir()
    code = main(["extract", "--config_file", CONFIG, "--weights", str(tmp_path / "nope.pth"), "--images",
                 str(tmp_path / "gallery"), "--out", str(tmp_path / "f.npz"), *OPTS])
    assert code == 2 and "nope.pth" in capsys.readouterr().err
    code = main(["extract", "--config_file", CONFIG, "--weights", make_weights(tmp_path), "--images",
                 str(tmp_path / "empty"), "--out", str(tmp_path / "f.npz"), *OPTS])
    assert code == 2 and "no images" in capsys.readouterr().err
    (tmp_path / "corrupt.pth").write_bytes(b"\x00garbage")
    code = main(["extract", "--config_file", CONFIG, "--weights", str(tmp_path / "corrupt.pth"), "--images",
                 str(tmp_path / "gallery"), "--out", str(tmp_path / "f.npz"), *OPTS])
    assert code == 2 and "cannot read" in capsys.readouterr().err
    assert not (tmp_path / "f.npz").exists()
    code = main(["search", "--gallery", str(tmp_path / "missing.npz"), "--query", "x.jpg"])
    assert code == 2 and "mbf extract" in capsys.readouterr().err
