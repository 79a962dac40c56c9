"""A user's own data: a folder of person crops described by three CSV lists.

::

    <DATASETS.ROOT_DIR>/<DATASETS.CUSTOM_DIR>/      (DATASETS.NAMES custom; CUSTOM_DIR defaults to 'custom')
        train.csv     path,pid,camid
        query.csv     path,pid,camid
        gallery.csv   path,pid,camid
        ...           the images, anywhere

Each list starts with the header ``path,pid,camid``; then one row per image: its path (relative
to the folder holding the list, or absolute), the person id (an integer >= 0; query and gallery
ids must agree, training ids are relabelled) and the 0-based camera. Training cameras must be
numbered 0..C-1 (they index the camera embedding); query and gallery crops of one person on the
same camera are not counted as matches, as in every re-ID protocol. A test-only set (e.g. in
``DATASETS.TEST_NAMES``) needs only ``query.csv`` and ``gallery.csv``. The lists are UTF-8 text
(spreadsheets: "CSV UTF-8"; a byte-order mark is fine) and name each image once: a row listed
twice would count twice in training or evaluation.
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

from ...errors import DatasetError
from .base import (Item, DatasetReader, Source, check_listed, check_unique, read_list_text, register_dataset,
                   relative_to_root)

HEADER = ["path", "pid", "camid"]


@dataclass
class CsvSource(Source):
    """Rows ``path,pid,camid`` of one CSV list."""

    list_file: Path
    consecutive_cameras: bool = False  # training: cameras must be 0..C-1

    def required(self):
        return [(self.list_file, "file")]

    def read(self):
        folder = str(self.list_file.parent)
        items, linenos = [], []
        rows = csv.reader(io.StringIO(read_list_text(self.list_file), newline=""))
        try:
            header = [cell.strip() for cell in next(rows, [])]
            if header != HEADER:
                raise DatasetError(
                    f"{self.list_file} line 1: expected the header 'path,pid,camid', got {','.join(header)!r}"
                )
            for row in rows:
                lineno = rows.line_num
                cells = [cell.strip() for cell in row]
                if not any(cells):
                    continue
                if len(cells) != 3 or not cells[1].isdecimal() or not cells[2].isdecimal():
                    raise DatasetError(
                        f"{self.list_file} line {lineno}: expected 'path,pid,camid' with pid and camid integers >= 0, "
                        f"got {','.join(row)!r}"
                    )
                path = cells[0] if os.path.isabs(cells[0]) else f"{folder}/{cells[0]}"
                items.append(Item(path, int(cells[1]), int(cells[2])))
                linenos.append(lineno)
        except csv.Error as exc:  # a NUL byte, a quote left open at the end
            raise DatasetError(f"{self.list_file} line {rows.line_num}: not a CSV row ({exc})") from None
        paths = [item.path for item in items]
        check_unique(paths, self.list_file, linenos)
        check_listed(paths, lambda i: f"{self.list_file} line {linenos[i]}")
        cameras = sorted({item.camid for item in items})
        if self.consecutive_cameras and cameras != list(range(len(cameras))):
            raise DatasetError(
                f"{self.list_file} uses cameras {cameras}; number the training cameras 0..{len(cameras) - 1}"
            )
        return items

    def empty(self):
        return f"{self.list_file} lists no images"

    def describe(self, root):
        return f"{relative_to_root(self.list_file, root)}   rows path,pid,camid"


@register_dataset("custom")
class CustomDataset(DatasetReader):
    """Your own crops: ``train.csv``, ``query.csv``, ``gallery.csv`` in ``DATASETS.CUSTOM_DIR``."""

    title = "own data (CSV lists)"
    config_keys = {"folder": "CUSTOM_DIR"}

    def __init__(self, root: str | os.PathLike, folder: str = "custom"):
        super().__init__(root)
        self.folder = folder

    def sources(self):
        base = self.root / self.folder
        return {"train": CsvSource(base / "train.csv", consecutive_cameras=True),
                "query": CsvSource(base / "query.csv"),
                "gallery": CsvSource(base / "gallery.csv")}
