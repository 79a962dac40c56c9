"""MSMT17 (Wei et al., CVPR 2018), read from its image lists."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import DatasetError
from .base import (Item, ConcatSource, DatasetReader, Source, check_listed, check_unique, read_list_text,
                   register_dataset, relative_to_root)

NUM_CAMERAS = 15


@dataclass
class ListSource(Source):
    """Images named by a list file of ``<path relative to image_dir> <pid>`` lines.

    The camera is the third ``_`` field of the file name (1-based): ``0000_000_01_0303morning_0015_0.jpg``
    is camera 1. Listed images are checked with one listing per folder, not one stat each; the list is
    UTF-8 and names each image once.
    """

    list_file: Path
    image_dir: Path
    num_cameras: int = NUM_CAMERAS
    listings: dict = field(default_factory=dict)  # folder listings, shared by the lists of one dataset

    def required(self):
        return [(self.list_file, "file"), (self.image_dir, "folder")]

    def _where(self, lineno: int) -> str:
        return f"{self.list_file} line {lineno}"

    def read(self):
        base = str(self.image_dir)
        items, linenos = [], []
        for lineno, line in enumerate(read_list_text(self.list_file).split("\n"), start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or not fields[1].isdecimal():
                raise DatasetError(
                    f"{self._where(lineno)}: expected '<relative image path> <pid>', got {line.strip()!r}"
                )
            rel, pid = fields
            parts = rel.rpartition("/")[2].split("_")
            cam = int(parts[2]) if len(parts) > 2 and parts[2].isdecimal() else 0
            if not 1 <= cam <= self.num_cameras:
                raise DatasetError(
                    f"file name {rel} ({self._where(lineno)}) does not encode a camera 1..{self.num_cameras}; "
                    "expected '<pid>_<index>_<camera>_<time>_...', e.g. 0000_000_01_0303morning_0015_0.jpg"
                )
            items.append(Item(f"{base}/{rel}", int(pid), cam - 1))
            linenos.append(lineno)
        paths = [item.path for item in items]
        check_unique(paths, self.list_file, linenos)
        check_listed(paths, lambda i: self._where(linenos[i]), self.listings)
        return items

    def empty(self):
        return f"{self.list_file} lists no images"

    def describe(self, root):
        images = f"{relative_to_root(self.image_dir, root)}/<pid>/<pid>_<index>_<camera>_*.jpg"
        return f"{relative_to_root(self.list_file, root)} -> {images}"


@register_dataset("msmt17")
class MSMT17(DatasetReader):
    """MSMT17: 4,101 identities, 126,441 images, 15 cameras.

    As downloaded (V1; V2 has ``mask_train_v2`` / ``mask_test_v2`` instead, faces blurred)::

        msmt17/MSMT17_V1/train/<pid>/<name>.jpg     list_train.txt, list_val.txt
        msmt17/MSMT17_V1/test/<pid>/<name>.jpg      list_query.txt, list_gallery.txt

    Lists are lines ``<path relative to train/ or test/> <pid>``. Training is train + val, as
    TransReID trains (``use_val=False``, ``DATASETS.MSMT17_USE_VAL False``, leaves val out).
    """

    title = "MSMT17"
    dataset_dir = "msmt17"
    versions = {"MSMT17_V1": ("train", "test"), "MSMT17_V2": ("mask_train_v2", "mask_test_v2")}
    config_keys = {"use_val": "MSMT17_USE_VAL"}
    train_pids = 1041
    published = {"train": (train_pids, 32621), "query": (3060, 11659), "gallery": (3060, 82161)}
    notes = ("or MSMT17_V2 with mask_train_v2/ and mask_test_v2/ in place of train/ and test/",)

    def __init__(self, root: str | os.PathLike, use_val: bool = True):
        super().__init__(root)
        self.use_val = bool(use_val)

    def version(self) -> str:
        """The first version folder present (V1 when none is, for the expected tree)."""
        for version in self.versions:
            if (self.root / self.dataset_dir / version).is_dir():
                return version
        return next(iter(self.versions))

    def sources(self):
        version = self.version()
        base = self.root / self.dataset_dir / version
        train_dir, test_dir = (base / sub for sub in self.versions[version])
        listings: dict = {}

        def listed(name: str, image_dir: Path) -> ListSource:
            return ListSource(base / name, image_dir, listings=listings)

        train = listed("list_train.txt", train_dir)
        if self.use_val:
            train = ConcatSource([train, listed("list_val.txt", train_dir)])
        return {"train": train,
                "query": listed("list_query.txt", test_dir),
                "gallery": listed("list_gallery.txt", test_dir)}

    def expected_counts(self):
        counts = dict(self.published)
        if not self.use_val:
            counts["train"] = (self.train_pids, 30248)
        return counts
