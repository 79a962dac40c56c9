"""Tiny dataset trees written into a temporary folder."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_image(path: Path, height: int = 24, width: int = 12, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def write_split(folder: Path, names: list[str]) -> None:
    for i, name in enumerate(names):
        write_image(folder / name, seed=i)


MARKET_TRAIN = ["0002_c1s1_000451_03.jpg", "0002_c2s1_000551_01.jpg", "0007_c3s1_000101_01.jpg",
                "0007_c6s1_000201_01.jpg", "0005_c4s1_000301_01.jpg", "-1_c1s1_000001_00.jpg"]
MARKET_QUERY = ["0003_c1s1_000151_01.jpg", "0004_c2s1_000251_01.jpg"]
MARKET_GALLERY = ["0003_c5s1_000151_02.jpg", "0004_c6s1_000251_02.jpg", "0000_c1s1_000001_05.jpg",
                  "-1_c3s1_000002_00.jpg"]


@pytest.fixture
def market_root(tmp_path) -> Path:
    root = tmp_path / "datasets"
    write_split(root / "market1501" / "bounding_box_train", MARKET_TRAIN)
    write_split(root / "market1501" / "query", MARKET_QUERY)
    write_split(root / "market1501" / "bounding_box_test", MARKET_GALLERY)
    return root


@pytest.fixture
def images():
    """Helpers that write small random images: ``images.one(path)``, ``images.split(folder, names)``."""

    class Writer:
        one = staticmethod(write_image)
        split = staticmethod(write_split)

    return Writer
