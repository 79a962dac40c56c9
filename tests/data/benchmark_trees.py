"""Tiny trees in the exact layouts the benchmarks unpack to (empty files unless images are asked for)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def touch(path: Path, pid: int | None = None) -> Path:
    """An empty file, or with ``pid`` a small solid image whose colour encodes the pid."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if pid is None:
        path.write_bytes(b"")
    else:
        colour = ((pid * 67) % 256, (pid * 131) % 256, (pid * 29) % 256)
        Image.fromarray(np.full((24, 12, 3), colour, dtype=np.uint8)).save(path)
    return path


def market_train(root: Path, images: bool = False) -> list[str]:
    names = ["0002_c1s1_000451_03.jpg", "0002_c2s1_000551_01.jpg", "0007_c3s1_000101_01.jpg",
             "0007_c6s1_000201_01.jpg", "0005_c4s1_000301_01.jpg"]
    for name in names:
        touch(root / "market1501" / "bounding_box_train" / name, int(name[:4]) if images else None)
    return names


def occluded_reid_download(root: Path, pids=(1, 2, 3), per_id: int = 2, images: bool = False) -> None:
    for folder in ("occluded_body_images", "whole_body_images"):
        for pid in pids:
            for n in range(1, per_id + 1):
                path = root / "Occluded_REID" / folder / f"{pid:03d}" / f"{pid:03d}_{n:02d}.tif"
                touch(path, pid if images else None)


def occluded_reid_renamed(root: Path, pids=(1, 2, 3), per_id: int = 2) -> None:
    for folder, cam in (("query", 1), ("bounding_box_test", 3)):
        for pid in pids:
            for n in range(1, per_id + 1):
                touch(root / "Occluded_REID" / folder / f"{pid:03d}_c{cam}_{n:02d}.tif")


def partial_reid(root: Path, pids=(1, 2, 3), per_id: int = 2, images: bool = False) -> None:
    for folder in ("partial_body_images", "whole_body_images"):
        for pid in pids:
            for n in range(1, per_id + 1):
                touch(root / "Partial_REID" / folder / f"{pid:03d}_{n:02d}.jpg", pid if images else None)


def partial_ilids(root: Path, pids=(1, 2, 3), images: bool = False) -> None:
    for folder in ("partial_body_images", "whole_body_images"):
        for pid in pids:
            touch(root / "Partial_iLIDS" / folder / f"{pid:03d}.jpg", pid if images else None)


def p_dukemtmc(root: Path) -> None:
    base = root / "P-DukeMTMC-reID"
    for split, pids in (("train", (5, 9)), ("test", (12, 40))):
        for folder in ("whole_body_images", "occluded_body_images"):
            for pid in pids:
                for frame in (11, 12):
                    touch(base / split / folder / f"{pid:04d}" / f"{pid:04d}_c{frame % 8 + 1}_f{frame:07d}.jpg")


MSMT_LISTS = {  # list -> (folder, lines of (pid folder, name, pid))
    "list_train.txt": ("train", [("0000", "0000_000_01_0303morning_0015_0.jpg", 0),
                                 ("0000", "0000_001_05_0303morning_0036_1.jpg", 0),
                                 ("0001", "0001_000_15_0303noon_0100_0.jpg", 1)]),
    "list_val.txt": ("train", [("0001", "0001_002_03_0303noon_0120_1.jpg", 1),
                               ("0002", "0002_000_07_0303afternoon_0001_0.jpg", 2)]),
    "list_query.txt": ("test", [("0000", "0000_000_02_0303morning_0001_0.jpg", 0),
                                ("0001", "0001_000_09_0303morning_0002_0.jpg", 1)]),
    "list_gallery.txt": ("test", [("0000", "0000_003_04_0303noon_0001_0.jpg", 0),
                                  ("0001", "0001_003_11_0303noon_0002_0.jpg", 1),
                                  ("0002", "0002_003_12_0303noon_0003_0.jpg", 2)]),
}


def msmt17(root: Path, version: str = "MSMT17_V1") -> Path:
    base = root / "msmt17" / version
    rename = {"train": "mask_train_v2", "test": "mask_test_v2"} if version == "MSMT17_V2" else {}
    for list_name, (folder, lines) in MSMT_LISTS.items():
        base.mkdir(parents=True, exist_ok=True)
        (base / list_name).write_text("".join(f"{sub}/{name} {pid}\n" for sub, name, pid in lines))
        for sub, name, _ in lines:
            touch(base / rename.get(folder, folder) / sub / name)
    return base
