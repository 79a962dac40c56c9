"""What every dataset reader shares: items, sources of items, the registry and ``build_dataset``.

A dataset is a :class:`DatasetReader`: for each split (``train``, ``query``, ``gallery``) a
:class:`Source` that knows where its files lie, how a file names its person and camera, and
how to describe itself in the expected tree shown when something is missing. Items are
``(img_path, pid, camid, viewid)`` with 0-based cameras and viewid 0 (none of the datasets has
view labels); training identities are relabelled 0..N-1 in ascending pid order, query and
gallery keep their pids so that evaluation can match them.

Building is cheap on large sets: a folder is listed once (``os.scandir``) and listed files are
checked against one listing per folder, never with a ``stat`` per image.

Symbolic links are followed, to images and to folders. An image name whose link loops or leads
nowhere is one :class:`DatasetError` naming the link (skipping it would silently drop an
image). A folder reached a second time while listing (a link to a parent folder, to itself, or a
second way to a folder already listed) is skipped with a warning naming it: following it would
walk forever or list the same images twice. Image lists are UTF-8 text (a byte-order mark is
allowed) that name each image once.
"""
from __future__ import annotations

import logging
import os
import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, NamedTuple, Sequence

from ...errors import DatasetError
from ...registry import Registry
from ..io import os_reason

log = logging.getLogger(__name__)

VIEW_ID = 0  # no dataset here has view labels; one view for all (SIE_VIEW off)


class Item(NamedTuple):
    """One image of a dataset: its path, person id, 0-based camera and view."""

    path: str
    pid: int
    camid: int
    viewid: int = VIEW_ID


SPLITS = ("train", "query", "gallery")
TEST_SPLITS = ("query", "gallery")


@dataclass
class ReIDDataset:
    """Train, query and gallery items of one dataset, with the counts the model needs."""

    name: str
    train: list = field(default_factory=list)
    query: list = field(default_factory=list)
    gallery: list = field(default_factory=list)

    @property
    def num_train_pids(self) -> int:
        return len({item.pid for item in self.train})

    @property
    def num_train_cams(self) -> int:
        """Rows of the camera embedding: the highest training camera + 1 (cameras are 0-based
        ids, and a training split need not use every one: Market's c1, c2 and c6 alone need 6)."""
        return max((item.camid for item in self.train), default=-1) + 1

    @property
    def num_train_vids(self) -> int:
        """Rows of the view embedding: the highest training view + 1 (1: every dataset has view 0)."""
        return max((item.viewid for item in self.train), default=-1) + 1

    def counts(self, subset: str) -> tuple[int, int]:
        """(identities, images) of one subset."""
        items = getattr(self, subset)
        return len({item.pid for item in items}), len(items)

    def statistics(self) -> str:
        """The usual re-ID statistics table (identities, images, cameras per subset read)."""
        rule = "  " + "-" * 40
        rows = [f"=> {self.name} loaded", "Dataset statistics:", rule,
                "  subset   | # ids | # images | # cameras", rule]
        for subset in SPLITS:
            items = getattr(self, subset)
            if not items:
                continue
            ids, images = self.counts(subset)
            cams = len({item.camid for item in items})
            rows.append(f"  {subset:<8} | {ids:5d} | {images:8d} | {cams:9d}")
        rows.append(rule)
        return "\n".join(rows)


# ----------------------------------------------------------------------------- file names
@dataclass(frozen=True)
class PidRule:
    """How a file name gives the person id: a regex whose first group is the pid."""

    pattern: re.Pattern
    spelling: str  # e.g. "<pid>_<nn>.jpg"
    example: str

    def pid(self, path: str) -> int:
        match = self.pattern.match(os.path.basename(path))
        if match is None:
            raise DatasetError(
                f"file name {path} does not encode a person id; expected '{self.spelling}', e.g. {self.example}"
            )
        return int(match.group(1))


def pid_before_underscore(example: str, spelling: str = "<pid>_...") -> PidRule:
    """The pid is the number before the first ``_`` (``0005_c2_f0046985.jpg`` -> 5)."""
    return PidRule(re.compile(r"^(\d+)_"), spelling, example)


PID_IS_STEM = PidRule(re.compile(r"^(\d+)\.[^.]+$"), "<pid>.jpg", "001.jpg")


# ----------------------------------------------------------------------------- listing
def has_extension(name: str, extensions: Sequence[str]) -> bool:
    return os.path.splitext(name)[1].lower() in extensions


def _unreadable(folder, exc: OSError) -> DatasetError:
    return DatasetError(f"cannot list the dataset folder {folder}: {os_reason(exc)}")


def _scan(folder: str | os.PathLike) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError as exc:
        raise _unreadable(folder, exc) from None


def is_image_entry(entry: os.DirEntry, extensions: Sequence[str]) -> bool:
    """Whether ``entry`` is a file (or a link to one) with one of ``extensions``: no ``stat`` unless it is a
    link. DatasetError naming it when it is an image name whose link loops or leads nowhere."""
    if not has_extension(entry.name, extensions):
        return False
    try:
        if entry.is_file():
            return True
        if entry.is_symlink():
            os.stat(entry.path)  # a link to a folder named like an image is no image; a broken one raises
        return False
    except OSError as exc:
        raise DatasetError(f"cannot read image {entry.path}: {os_reason(exc, entry.path)}") from None


def new_subfolders(entries: list[os.DirEntry], seen: dict) -> list[os.DirEntry]:
    """The folders (links followed) among ``entries`` not listed before, by name; ``seen`` maps the
    (device, inode) of each folder listed to its path and is filled here. A folder met again is
    skipped with a warning (see the module docstring); an entry whose link loops is no folder."""
    found = []
    for entry in sorted(entries, key=lambda e: (e.is_symlink(), e.name)):  # real folders before links to them
        try:
            if not entry.is_dir():
                continue
            info = entry.stat()
        except OSError:
            continue
        key = (info.st_dev, info.st_ino)
        if key in seen:
            log.warning("skipped %s: it is the folder %s, listed already (a symbolic link loop, or a second link to "
                        "one folder); its images are listed once", entry.path, seen[key])
            continue
        seen[key] = entry.path
        found.append(entry)
    return found


def _seen(folder: str | os.PathLike) -> dict:
    """``seen`` of :func:`new_subfolders` holding ``folder`` itself."""
    try:
        info = os.stat(folder)
    except OSError as exc:
        raise _unreadable(folder, exc) from None
    return {(info.st_dev, info.st_ino): str(folder)}


def list_files(folder: Path, extensions: Sequence[str]) -> list[str]:
    """Names of the files in ``folder`` (links to files included) with one of ``extensions``, sorted."""
    return sorted(e.name for e in _scan(folder) if is_image_entry(e, extensions))


def list_subfolder_files(folder: Path, extensions: Sequence[str]) -> list[str]:
    """Paths ``<folder>/<sub>/<name>`` of the files one level below ``folder``, sorted by file name."""
    found = []
    for sub in new_subfolders(_scan(folder), _seen(folder)):
        found.extend((name, f"{folder}/{sub.name}/{name}") for name in list_files(Path(sub.path), extensions))
    return [path for _, path in sorted(found)]


def list_tree(folder: Path, extensions: Sequence[str]) -> list[str]:
    """Paths of the files with one of ``extensions`` in ``folder`` and every folder below it, sorted;
    each folder is listed once however many links lead to it."""
    seen, pending, found = _seen(folder), deque([folder]), []
    while pending:
        current = pending.popleft()  # breadth first: a folder is met by its shortest way first
        entries = _scan(current)
        found.extend(str(current / e.name) for e in entries if is_image_entry(e, extensions))
        pending.extend(current / e.name for e in new_subfolders(entries, seen))
    return sorted(found)


def read_list_text(list_file: Path) -> str:
    """The text of an image list, decoded as UTF-8 (a byte-order mark allowed); DatasetError naming the
    line where it is not UTF-8 (a list saved as Latin-1 or a Windows code page, say)."""
    try:
        data = list_file.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read the list {list_file}: {os_reason(exc)}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = exc.object.count(b"\n", 0, exc.start) + 1  # exc.object: the bytes after any byte-order mark
        raise DatasetError(
            f"{list_file} line {line} is not UTF-8 (byte 0x{exc.object[exc.start]:02x}); the list must be saved as "
            "UTF-8 text (a spreadsheet's \"CSV UTF-8\")"
        ) from None


def check_unique(paths: Sequence[str], list_file: Path, linenos: Sequence[int]) -> None:
    """DatasetError naming ``list_file`` and both lines when two of its lines name one image: read twice, it
    would count twice in training or evaluation."""
    first: dict[str, int] = {}
    for path, lineno in zip(paths, linenos):
        key = os.path.abspath(path)  # "a.jpg", "./a.jpg" and its absolute path are one image
        if key in first:
            raise DatasetError(f"{list_file} lines {first[key]} and {lineno} both name the image {path}; "
                               "list each image once")
        first[key] = lineno


def first_missing(paths: Sequence[str], listings: dict | None = None) -> int | None:
    """Index of the first path that does not exist, listing each folder once (no stat per file).

    ``listings``: folder -> names, shared by the calls of one build (filled here).
    """
    listings = {} if listings is None else listings
    for i, path in enumerate(paths):
        folder, name = os.path.split(path)
        names = listings.get(folder)
        if names is None:
            try:
                names = set(os.listdir(folder or "."))
            except (FileNotFoundError, NotADirectoryError):
                names = set()
            except OSError as exc:
                raise _unreadable(folder or ".", exc) from None
            listings[folder] = names
        if name not in names:
            return i
    return None


# ----------------------------------------------------------------------------- sources
class Source:
    """Where one split's images lie and how their names give person and camera."""

    def required(self) -> list[tuple[Path, str]]:
        """``(path, 'folder' | 'file')`` that must exist before reading."""
        raise NotImplementedError

    def read(self) -> list[Item]:
        raise NotImplementedError

    def empty(self) -> str:
        """What holds no images when the split comes out empty (names the folder or list)."""
        raise NotImplementedError

    def describe(self, root: Path) -> str:
        """One line of the expected tree, relative to ``root``."""
        raise NotImplementedError


def relative_to_root(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


@dataclass
class FolderSource(Source):
    """Image files in one folder (``nested``: in one sub-folder per person), one fixed camera."""

    folder: Path
    extensions: tuple
    rule: PidRule
    camid: int
    nested: bool = False

    def required(self):
        return [(self.folder, "folder")]

    def read(self):
        if self.nested:
            paths = list_subfolder_files(self.folder, self.extensions)
        else:
            paths = [f"{self.folder}/{name}" for name in list_files(self.folder, self.extensions)]
        return [Item(path, self.rule.pid(path), self.camid) for path in paths]

    def empty(self):
        where = f"{self.folder} (in its per-person sub-folders)" if self.nested else str(self.folder)
        return f"{where} holds no {'/'.join(self.extensions)} images"

    def describe(self, root):
        inner = f"<pid>/{self.rule.spelling}" if self.nested else self.rule.spelling
        return f"{relative_to_root(self.folder, root)}/{inner}"


@dataclass
class ConcatSource(Source):
    """Several sources read one after another as one split (e.g. train + val)."""

    parts: list

    def required(self):
        return [need for part in self.parts for need in part.required()]

    def read(self):
        return [item for part in self.parts for item in part.read()]

    def empty(self):
        return " and ".join(part.empty() for part in self.parts)

    def describe(self, root):
        return " + ".join(part.describe(root) for part in self.parts)


def check_listed(paths: Sequence[str], where: Callable[[int], str], listings: dict | None = None) -> None:
    """A DatasetError naming the list line (``where(i)``) and the image when a listed image is missing."""
    missing = first_missing(paths, listings)
    if missing is not None:
        raise DatasetError(f"{where(missing)} names {paths[missing]}, which does not exist")


# ----------------------------------------------------------------------------- readers
class DatasetReader:
    """One dataset as it lies under ``DATASETS.ROOT_DIR``: a :class:`Source` per split.

    Subclasses set ``title``, ``published`` (the paper's (identities, images) per split) and
    implement :meth:`sources`; :func:`build_dataset` does the checks, relabelling and logging.
    """

    name: ClassVar[str] = ""  # the DATASETS.NAMES value, set by register_dataset
    title: ClassVar[str] = ""
    published: ClassVar[dict] = {}  # split -> (identities, images) of the standard release
    config_keys: ClassVar[dict] = {}  # constructor keyword -> DATASETS.<key> that sets it
    notes: ClassVar[tuple] = ()  # extra lines of the expected tree (alternative layouts)

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def sources(self) -> dict[str, Source]:
        raise NotImplementedError

    def expected_counts(self) -> dict:
        return dict(self.published)

    def tree(self) -> str:
        lines = [f"  {self.root}/"]
        for split, source in self.sources().items():
            lines.append(f"    {source.describe(self.root)}   ({split})")
        lines.extend(f"  {note}" for note in self.notes)
        return "\n".join(lines)


DATASETS = Registry("dataset", key="DATASETS.NAMES")  # name -> DatasetReader subclass


def register_dataset(name: str, replace: bool = False):
    """Class decorator: make a reader available as ``DATASETS.NAMES`` ``name`` (a second reader of
    the same name is a ValueError unless ``replace``)."""

    def add(cls: type[DatasetReader]) -> type[DatasetReader]:
        DATASETS.register(name, cls, replace=replace)
        cls.name = name
        return cls

    return add


def get_reader(name: str) -> type[DatasetReader]:
    """The reader registered as ``name``; a DatasetError listing the known ones otherwise."""
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r} (DATASETS.NAMES); known: {', '.join(DATASETS)}")
    return DATASETS.get(name)


def relabel(items: list[Item]) -> list[Item]:
    """Training pids mapped to 0..N-1 in ascending pid order."""
    label = {pid: i for i, pid in enumerate(sorted({item.pid for item in items}))}
    return [item._replace(pid=label[item.pid]) for item in items]


def count_mismatch(dataset: ReIDDataset, expected: dict, splits: Sequence[str]) -> str | None:
    """One warning naming expected and found (identities, images) of every split that differs."""
    differences = []
    for split in splits:
        if split not in expected:
            continue
        want, got = tuple(expected[split]), dataset.counts(split)
        if want != got:
            differences.append(f"{split}: expected {want[0]} ids / {want[1]} images, found {got[0]} / {got[1]}")
    if not differences:
        return None
    return (
        f"dataset {dataset.name!r} differs from the published statistics ({'; '.join(differences)}). "
        "It is read as it is; a different version or a pre-split copy is the commonest cause, "
        "and gives scores that do not compare with the paper's"
    )


def build_dataset(name: str, root: str, verbose: bool = True, splits: Sequence[str] = SPLITS,
                  **options) -> ReIDDataset:
    """Read dataset ``name`` from ``root`` (DATASETS.ROOT_DIR) and log its statistics.

    ``splits`` chooses what is read (a test set needs only query and gallery: its training
    folder need not exist). ``options`` go to the reader (e.g. ``use_val`` of msmt17).
    """
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise ValueError(f"splits must be among {SPLITS}, got {sorted(unknown)}")
    reader = get_reader(name)(root, **options)
    sources = reader.sources()
    for split in splits:
        for path, kind in sources[split].required():
            if not (path.is_dir() if kind == "folder" else path.is_file()):
                raise DatasetError(
                    f"dataset {name!r}: {kind} {path} not found (DATASETS.ROOT_DIR={root!r}). "
                    f"Expected layout (as the dataset unpacks):\n{reader.tree()}"
                )
    read = {}
    for split in splits:
        items = sources[split].read()
        if not items:
            raise DatasetError(f"dataset {name!r}: {sources[split].empty()} (the {split} split is empty)")
        read[split] = items
    dataset = ReIDDataset(name, relabel(read.get("train", [])), read.get("query", []), read.get("gallery", []))
    warning = count_mismatch(dataset, reader.expected_counts(), splits)
    if warning:
        log.warning("%s", warning)
    if verbose:
        log.info("%s", dataset.statistics())
    return dataset


def build_test_set(name: str, root: str, verbose: bool = True, **options) -> ReIDDataset:
    """Only the query and gallery of dataset ``name`` (its training split is not read)."""
    return build_dataset(name, root, verbose=verbose, splits=TEST_SPLITS, **options)
