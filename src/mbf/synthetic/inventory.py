"""What a dataset folder holds: its manifest, an interrupted generation's record, and which of its
files the generator wrote.

The generator owns the files that ``annotations.csv`` lists (images, and masks by stem), its root
files (manifest, annotations, the unfinished-generation marker) and, while a generation is
unfinished, the files that generation's plan writes. Anything else in the split and mask folders
belongs to someone else: it is reported, never deleted. The lock file and temporary files are
ignored. Checking costs one ``os.scandir`` per folder and no image is opened.
"""
from __future__ import annotations

import csv
import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ..files import LOCK_NAME, is_temporary
from .options import (_FORMAT, _INCOMPLETE_MARKER, ANNOTATIONS_NAME, CLI_FLAGS, GENERATOR_VERSION, MANIFEST_NAME,
                      MASK_DIR, SPLIT_DIRS, SynthOptions, SynthSummary)
from .plan import image_files, planned_files

_MARKER_FORMAT = "mbf-synthetic-unfinished"
MASK_FOLDERS = tuple(f"{MASK_DIR}/{split}" for split in SPLIT_DIRS)
FOLDERS = (*SPLIT_DIRS, MASK_DIR, *MASK_FOLDERS)  # the folders whose every entry is checked
ROOT_FILES = (_INCOMPLETE_MARKER, ANNOTATIONS_NAME, MANIFEST_NAME)
_IMAGE_NAME = re.compile(r"[\w-]+\.jpg")  # a plain file name: a damaged list must not name a file elsewhere
SHOWN = 5  # files named in a message


@dataclass(frozen=True)
class Record:
    """The seed and options a generation was (or is being) made with."""

    seed: int
    options: SynthOptions


def _ignored(name: str) -> bool:
    return name == LOCK_NAME or is_temporary(name)


def read_manifest(dataset_dir: str | os.PathLike) -> SynthSummary | None:
    """The summary stored by :func:`generate`, or None when there is no readable manifest."""
    root = Path(dataset_dir)
    try:
        with open(root / MANIFEST_NAME, encoding="utf-8") as fh:
            data = json.load(fh)
        if data.get("format") != _FORMAT:
            return None
        return SynthSummary(str(root), int(data["seed"]), int(data["version"]), dict(data["options"]),
                            {k: int(v) for k, v in data["counts"].items()}, dict(data["identities"]),
                            dict(data["occlusion"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def marker_content(seed: int, opts: SynthOptions) -> dict:
    """What the unfinished-generation marker records: enough to finish (or recognise) that generation."""
    return {"format": _MARKER_FORMAT, "note": "generation in progress or interrupted", "seed": int(seed),
            "version": GENERATOR_VERSION, "options": opts.to_dict()}


def read_marker(dataset_dir: str | os.PathLike) -> Record | None:
    """The seed and options of the unfinished generation in ``dataset_dir``; None when there is
    none, or its marker predates recorded options (or is unreadable)."""
    try:
        data = json.loads((Path(dataset_dir) / _INCOMPLETE_MARKER).read_text(encoding="utf-8"))
        if data.get("format") != _MARKER_FORMAT or int(data["version"]) != GENERATOR_VERSION:
            return None  # another generator's plan would name other files
        return Record(int(data["seed"]), SynthOptions.from_dict(data["options"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def read_record(dataset_dir: str | os.PathLike) -> Record | None:
    """The seed and options of the unfinished generation, else of the manifest, else None."""
    marker = read_marker(dataset_dir)
    if marker is not None:
        return marker
    summary = read_manifest(dataset_dir)
    return None if summary is None else Record(summary.seed, SynthOptions.from_dict(summary.options))


def _annotated(root: Path) -> tuple[set[str], dict[str, int]] | None:
    """The image and mask files that annotations.csv lists and the images per split; None when it
    is missing, unreadable or names something that is not an image of a split folder."""
    files, counts = set(), dict.fromkeys(SPLIT_DIRS, 0)
    try:
        with open(root / ANNOTATIONS_NAME, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                split, image = row.get("split"), row.get("image")
                if split not in counts or not isinstance(image, str) or not _IMAGE_NAME.fullmatch(image):
                    return None
                files.update(image_files(split, image[:-len(".jpg")]))
                counts[split] += 1
    except (OSError, ValueError, csv.Error):
        return None
    return files, counts


def _entries(root: Path) -> set[str]:
    """Every entry of the split and mask folders ('/'-separated, relative to ``root``)."""
    found = set()
    for folder in FOLDERS:
        try:
            with os.scandir(root / folder) as it:
                found.update(f"{folder}/{e.name}" for e in it if not _ignored(e.name))
        except (FileNotFoundError, NotADirectoryError):
            pass
    return found


def is_foreign(dataset_dir: str | os.PathLike) -> bool:
    """Whether ``dataset_dir`` holds something, but no synthetic dataset (finished or not)."""
    root = Path(dataset_dir)
    if (root / MANIFEST_NAME).is_file() or (root / _INCOMPLETE_MARKER).exists():
        return False
    if root.is_dir():
        with os.scandir(root) as it:
            return any(not _ignored(e.name) for e in it)
    return root.exists()


def listing(paths: list[str], template: str) -> str:
    """``template`` ('{n} file{s} ...') followed by the first few of ``paths`` and how many more."""
    head = template.format(n=len(paths), s="" if len(paths) == 1 else "s")
    more = f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else ""
    return f"{head}: {', '.join(paths[:SHOWN])}{more}"


@dataclass
class Survey:
    """What a dataset folder holds, compared with what its generator wrote.

    ``state``: "missing" (nothing there), "foreign" (something, but no synthetic dataset),
    "complete", "modified" (a manifest, but files differ from it or its records are unreadable)
    or "unfinished" (a generation started and did not finish).
    """

    root: Path
    state: str
    manifest: SynthSummary | None = None
    marker: Record | None = None  # the unfinished generation's seed and options (None: not recorded)
    present: set[str] = field(default_factory=set)  # entries of the split and mask folders
    own: set[str] = field(default_factory=set)  # entries the generator wrote (or was writing)
    missing: list[str] = field(default_factory=list)  # files the generator wrote that are gone
    problems: list[str] = field(default_factory=list)

    def foreign(self, also_own: set[str] = frozenset()) -> list[str]:
        """Entries of the split and mask folders that the generator did not write."""
        return sorted(self.present - self.own - also_own)

    @property
    def record(self) -> Record | None:
        if self.marker is not None:
            return self.marker
        m = self.manifest
        return None if m is None else Record(m.seed, SynthOptions.from_dict(m.options))

    def differences(self) -> list[str]:
        """The problems, the files added and the files missing, one phrase each."""
        out = list(self.problems)
        if extra := self.foreign():
            out.append(listing(extra, "{n} file{s} the generator did not write"))
        if self.missing:
            out.append(listing(self.missing, "{n} generated file{s} missing"))
        return out


def survey_dataset(dataset_dir: str | os.PathLike) -> Survey:
    """Compare the folder's split and mask folders with the files its generator wrote."""
    root = Path(dataset_dir)
    unfinished = (root / _INCOMPLETE_MARKER).exists()
    if not unfinished and not (root / MANIFEST_NAME).is_file():
        missing = not is_foreign(root)
        return Survey(root, "missing" if missing else "foreign", problems=[f"no readable {MANIFEST_NAME}"])
    survey = Survey(root, "unfinished" if unfinished else "complete", manifest=read_manifest(root),
                    marker=read_marker(root) if unfinished else None, present=_entries(root), own=set(MASK_FOLDERS))
    annotated = _annotated(root)
    listed = annotated[0] if annotated else set()
    if annotated is None and survey.manifest is not None and survey.manifest.version == GENERATOR_VERSION:
        listed = planned_files(survey.manifest.seed, SynthOptions.from_dict(survey.manifest.options))
    survey.own |= listed
    if unfinished:
        survey.problems.append("generation did not finish")
        if survey.marker is not None:
            survey.own |= planned_files(survey.marker.seed, survey.marker.options)
        return survey
    if survey.manifest is None:
        survey.problems.append(f"no readable {MANIFEST_NAME}")
    if annotated is None:
        survey.problems.append(f"{ANNOTATIONS_NAME} is missing or unreadable")
    elif survey.manifest is not None:
        survey.problems += [f"{ANNOTATIONS_NAME} lists {annotated[1][s]} images in {s}, {MANIFEST_NAME} says "
                            f"{survey.manifest.counts.get(s)}" for s in SPLIT_DIRS
                            if annotated[1][s] != survey.manifest.counts.get(s)]
    survey.missing = sorted(listed - survey.present)
    if survey.differences():
        survey.state = "modified"
    return survey


def verify(dataset_dir: str | os.PathLike) -> list[str]:
    """Problems found in a generated dataset (empty when it is complete and unchanged)."""
    return survey_dataset(dataset_dir).differences()


def dataset_status(dataset_dir: str | os.PathLike) -> str:
    """'missing', 'complete', 'incomplete' (ours, unfinished or changed) or 'foreign'."""
    state = survey_dataset(dataset_dir).state
    return "incomplete" if state in ("modified", "unfinished") else state


def regenerate_command(dataset_dir: str | os.PathLike, seed: int | None = None, options: dict | None = None) -> str:
    """The ``mbf synth`` command that regenerates ``dataset_dir`` on purpose, with the seed and
    options of its unfinished generation or its manifest (``seed``, ``options``: others).

    Options that have no command-line flag are taken from the manifest by ``--force`` itself.
    """
    record = read_record(dataset_dir)
    if seed is None:
        seed = record.seed if record else 0
    if options is None:
        options = record.options.to_dict() if record else {}
    words = ["mbf", "synth", "--out", str(dataset_dir), "--seed", str(seed)]
    for name, flag in CLI_FLAGS.items():
        if name in options:
            words += [flag, str(options[name])]
    return shlex.join([*words, "--force"])
