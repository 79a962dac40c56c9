"""Market-1501-style folders: ``bounding_box_train``, ``query``, ``bounding_box_test`` of crops
named ``<pid>_c<camera>...`` (Market-1501, DukeMTMC-reID, Occluded-Duke, the synthetic set).

Market-1501 marks junk detections with pid -1 (dropped) and distractors with pid 0 (kept in
the gallery, they never match a query).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ...errors import DatasetError
from .base import Item, DatasetReader, Source, relative_to_root, list_files, register_dataset

# "<pid>_c<camera>", pid possibly -1 (junk); the camera is every digit after "c", so that "c12" is
# camera 12 (out of range, an error), not camera 1 followed by a "2"
NAME_PATTERN = re.compile(r"^(-?\d+)_c(\d+)")
JUNK_PID = -1


def parse_name(path: Path, num_cameras: int) -> tuple[int, int]:
    """``(pid, 0-based camera)`` encoded in a file name, or a DatasetError naming the file."""
    match = NAME_PATTERN.match(path.name)
    if match is None:
        raise DatasetError(
            f"file name {path} does not encode a person id and camera; expected '<pid>_c<camera>...', "
            "e.g. 0002_c1s1_000451_03.jpg"
        )
    pid, cam = int(match.group(1)), int(match.group(2))
    if pid != JUNK_PID and not 1 <= cam <= num_cameras:
        raise DatasetError(f"file name {path} has camera {cam}; this dataset has cameras 1..{num_cameras}")
    if pid < JUNK_PID:
        raise DatasetError(f"file name {path} has a negative person id {pid}")
    return pid, cam - 1


@dataclass
class MarketFolder(Source):
    """One folder of ``<pid>_c<camera>...`` crops, sorted by name, junk (pid -1) dropped."""

    folder: Path
    extensions: tuple = (".jpg",)
    num_cameras: int = 6

    def required(self):
        return [(self.folder, "folder")]

    def read(self):
        items = []
        for name in list_files(self.folder, self.extensions):
            path = self.folder / name
            pid, cam = parse_name(path, self.num_cameras)
            if pid != JUNK_PID:
                items.append(Item(str(path), pid, cam))
        return items

    def empty(self):
        return f"{self.folder} holds no {'/'.join(self.extensions)} images"

    def describe(self, root):
        return f"{relative_to_root(self.folder, root)}/<pid>_c<camera>*{'|'.join(self.extensions)}"


class MarketStyle(DatasetReader):
    """A dataset in Market-1501's three folders."""

    dataset_dir = "market1501"
    train_dir = "bounding_box_train"
    query_dir = "query"
    gallery_dir = "bounding_box_test"
    extensions = (".jpg",)
    num_cameras = 6

    def folder(self, split: str) -> Path:
        sub = {"train": self.train_dir, "query": self.query_dir, "gallery": self.gallery_dir}[split]
        return self.root / self.dataset_dir / sub

    def sources(self):
        return {split: MarketFolder(self.folder(split), self.extensions, self.num_cameras)
                for split in ("train", "query", "gallery")}


@register_dataset("market1501")
class Market1501(MarketStyle):
    """Market-1501 (Zheng et al., ICCV 2015): 1,501 identities, 6 cameras.

    Unpacked as ``Market-1501-v15.09.15``; rename (or link) it to ``market1501``.
    """

    title = "Market-1501"
    published = {"train": (751, 12936), "query": (750, 3368), "gallery": (751, 15913)}


@register_dataset("dukemtmc")
class DukeMTMCReID(MarketStyle):
    """DukeMTMC-reID (Zheng et al., ICCV 2017): 1,404 identities plus 408 distractors, 8 cameras."""

    title = "DukeMTMC-reID"
    dataset_dir = "DukeMTMC-reID"
    num_cameras = 8
    published = {"train": (702, 16522), "query": (702, 2228), "gallery": (1110, 17661)}


@register_dataset("occ_duke")
class OccludedDuke(MarketStyle):
    """Occluded-Duke (Miao et al., ICCV 2019): DukeMTMC-reID re-split so that every query is occluded."""

    title = "Occluded-Duke"
    dataset_dir = "Occluded_Duke"
    num_cameras = 8
    published = {"train": (702, 15618), "query": (519, 2210), "gallery": (1110, 17661)}


@register_dataset("synthetic_occ")
class SyntheticOccluded(MarketStyle):
    """The embedded synthetic occluded set (``mbf synth``); its size is the generator's choice."""

    title = "Synthetic occluded (generated)"
    dataset_dir = "Synthetic_Occluded"


class TrainsOnMarket:
    """Test-only benchmarks: the training split is Market-1501's ``bounding_box_train``.

    Mixed in before :class:`DatasetReader`; subclasses give ``test_sources()``.
    """

    root: Path

    def sources(self):
        return {"train": Market1501(self.root).sources()["train"], **self.test_sources()}

    def expected_counts(self):
        return {"train": Market1501.published["train"], **self.published}
