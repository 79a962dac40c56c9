"""Tiny models saved as checkpoints and folders of generated crops, for the retrieval tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
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
BASELINE = ["MODEL.NAME", "transreid"]
STRIDE_12 = ["MODEL.STRIDE_SIZE", "[12, 12]"]


class Tiny:
    config, opts = CONFIG, OPTS
    # model variants: config overrides and descriptor size
    variants = {"mbf-stride16": ([], 9 * 32), "mbf-stride12": (STRIDE_12, 9 * 32), "baseline": (BASELINE, 32),
                "mbf-no-cameras": (["MODEL.SIE_CAMERA", "False"], 9 * 32)}

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path

    def weights(self, name: str = "model.pth", extra: list[str] = (), seed: int = 0) -> str:
        """A randomly initialised tiny model (5 identities, 3 cameras) saved as a checkpoint."""
        torch.manual_seed(seed)
        model = build_model(load_config(CONFIG, OPTS + list(extra)), num_classes=5, camera_num=3, view_num=1,
                            pretrained=False)
        with torch.no_grad():  # non-trivial BN statistics, so the BNNecks do something
            for m in model.modules():
                if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                    m.running_mean.uniform_(-0.1, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
        path = self.tmp / name
        torch.save(model.state_dict(), path)
        return str(path)

    def images(self, folder: str | Path, n: int = 6, seed: int = 0) -> list[str]:
        """``n`` random crops of re-ID style names (cameras 1-3) as jpg/png/tif, some in a subfolder."""
        folder = self.tmp / folder
        rng = np.random.default_rng(seed)
        paths = []
        for i in range(n):
            ext = (".jpg", ".png", ".tif")[i % 3]
            p = folder / ("sub" if i % 2 else "") / f"{i:04d}_c{i % 3 + 1}s1_000001_01{ext}"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (80, 40, 3), dtype=np.uint8)).save(p)
            paths.append(str(p))
        return sorted(paths)

    def extract(self, weights: str, images, out, *args: str, extra: list[str] = ()) -> int:
        return main(["extract", "--config_file", CONFIG, "--weights", weights, "--images", str(images),
                     "--out", str(out), *args, *OPTS, *extra])


@pytest.fixture
def tiny(tmp_path) -> Tiny:
    return Tiny(tmp_path)


@pytest.fixture(autouse=True)
def one_thread(one_torch_thread):
    """Every test here runs on one torch thread (tests/conftest.py)."""
