"""The re-ID datasets, read from their standard folder layouts.

Every dataset is a folder of person crops named ``<pid>_c<camera>...`` (Market-1501 and
DukeMTMC-reID conventions) split into a training set, a query set and a gallery. Items are
``(img_path, pid, camid, viewid)`` with 0-based cameras and viewid 0 (no view labels);
training identities are relabelled 0..N-1 in ascending pid order, query and gallery keep
their pids so that evaluation can match them.

==============  =====================================  ==============================  =======
name            train                                  query / gallery                 cameras
==============  =====================================  ==============================  =======
market1501      market1501/bounding_box_train          market1501/query, /bb_test      1-6
dukemtmc        DukeMTMC-reID/bounding_box_train       DukeMTMC-reID/...               1-8
occ_duke        Occluded_Duke/bounding_box_train       Occluded_Duke/...               1-8
occ_reid        market1501/bounding_box_train          Occluded_REID/... (.tif)        1-6
synthetic_occ   Synthetic_Occluded/bounding_box_train  Synthetic_Occluded/...          1-6
==============  =====================================  ==============================  =======

Market-1501 marks junk detections with pid -1 (dropped) and distractors with pid 0 (kept in
the gallery, they never match a query).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DatasetError

log = logging.getLogger(__name__)

Item = tuple  # (img_path: str, pid: int, camid: int, viewid: int)

# "<pid>_c<camera digit>", pid possibly -1 (junk); the reference's naming rule
NAME_PATTERN = re.compile(r"^(-?\d+)_c(\d)")
JUNK_PID = -1
VIEW_ID = 0  # none of these datasets has view labels; one view for all (SIE_VIEW off)


@dataclass(frozen=True)
class Split:
    """One folder of a dataset: where it lies, which files count, which cameras exist."""

    folder: str  # relative to DATASETS.ROOT_DIR
    extensions: tuple = (".jpg",)
    num_cameras: int = 6


@dataclass
class ReIDDataset:
    """Train, query and gallery items of one dataset, with the counts the model needs."""

    name: str
    train: list = field(default_factory=list)
    query: list = field(default_factory=list)
    gallery: list = field(default_factory=list)

    @property
    def num_train_pids(self) -> int:
        return len({pid for _, pid, _, _ in self.train})

    @property
    def num_train_cams(self) -> int:
        return len({cam for _, _, cam, _ in self.train})

    @property
    def num_train_vids(self) -> int:
        return len({view for _, _, _, view in self.train})

    def statistics(self) -> str:
        """The usual re-ID statistics table (identities, images, cameras per subset)."""
        rule = "  " + "-" * 40
        rows = [f"=> {self.name} loaded", "Dataset statistics:", rule,
                "  subset   | # ids | # images | # cameras", rule]
        for subset in ("train", "query", "gallery"):
            items = getattr(self, subset)
            if not items:  # not read (a test run reads no training split)
                continue
            ids = len({pid for _, pid, _, _ in items})
            cams = len({cam for _, _, cam, _ in items})
            rows.append(f"  {subset:<8} | {ids:5d} | {len(items):8d} | {cams:9d}")
        rows.append(rule)
        return "\n".join(rows)


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset's three splits lie."""

    train: Split
    query: Split
    gallery: Split

    def folders(self) -> dict:
        return {"train": self.train, "query": self.query, "gallery": self.gallery}


def _layout(folder: str, num_cameras: int) -> DatasetSpec:
    return DatasetSpec(
        train=Split(f"{folder}/bounding_box_train", num_cameras=num_cameras),
        query=Split(f"{folder}/query", num_cameras=num_cameras),
        gallery=Split(f"{folder}/bounding_box_test", num_cameras=num_cameras),
    )


DATASETS: dict[str, DatasetSpec] = {
    "market1501": _layout("market1501", 6),
    "dukemtmc": _layout("DukeMTMC-reID", 8),
    "occ_duke": _layout("Occluded_Duke", 8),
    # Occluded-REID has no training set: train on Market-1501, test on the occluded .tif crops
    "occ_reid": DatasetSpec(
        train=Split("market1501/bounding_box_train", num_cameras=6),
        query=Split("Occluded_REID/query", extensions=(".tif",), num_cameras=6),
        gallery=Split("Occluded_REID/bounding_box_test", extensions=(".tif",), num_cameras=6),
    ),
    "synthetic_occ": _layout("Synthetic_Occluded", 6),
}


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


def _expected_tree(name: str, root: Path, spec: DatasetSpec) -> str:
    lines = [f"  {root}/"]
    for split in spec.folders().values():
        lines.append(f"    {split.folder}/   ({', '.join(split.extensions)} files named <pid>_c<camera>...)")
    return "\n".join(lines)


def read_split(root: Path, split: Split) -> list[Item]:
    """Items of one split folder, sorted by file name, junk (pid -1) dropped."""
    folder = root / split.folder
    paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in split.extensions)
    items = []
    for path in paths:
        pid, cam = parse_name(path, split.num_cameras)
        if pid == JUNK_PID:
            continue
        items.append((str(path), pid, cam, VIEW_ID))
    return items


def relabel(items: list[Item]) -> list[Item]:
    """Training pids mapped to 0..N-1 in ascending pid order."""
    label = {pid: i for i, pid in enumerate(sorted({pid for _, pid, _, _ in items}))}
    return [(path, label[pid], cam, view) for path, pid, cam, view in items]


SUBSETS = ("train", "query", "gallery")
TEST_SUBSETS = ("query", "gallery")


def build_dataset(name: str, root: str, verbose: bool = True, subsets: tuple = SUBSETS) -> ReIDDataset:
    """Read dataset ``name`` from ``root`` (DATASETS.ROOT_DIR) and log its statistics.

    ``subsets`` limits what is read (and must be on disk): evaluation needs only
    :data:`TEST_SUBSETS`, so a test run works without the training folder.
    """
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r} (DATASETS.NAMES); known: {', '.join(DATASETS)}")
    spec = DATASETS[name]
    wanted = {subset: split for subset, split in spec.folders().items() if subset in subsets}
    root_path = Path(root)
    missing = [s.folder for s in wanted.values() if not (root_path / s.folder).is_dir()]
    if missing:
        raise DatasetError(
            f"dataset {name!r}: folder {root_path / missing[0]} not found (DATASETS.ROOT_DIR={root!r}). "
            f"Expected layout:\n{_expected_tree(name, root_path, spec)}"
        )
    splits = {subset: [] for subset in SUBSETS}
    for subset, split in wanted.items():
        items = read_split(root_path, split)
        if not items:
            raise DatasetError(
                f"dataset {name!r}: {root_path / split.folder} holds no {'/'.join(split.extensions)} images"
            )
        splits[subset] = items
    dataset = ReIDDataset(name, relabel(splits["train"]), splits["query"], splits["gallery"])
    if verbose:
        log.info("%s", dataset.statistics())
    return dataset
