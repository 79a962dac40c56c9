"""Generation: the dataset's files, written under the folder's lock, and ``ensure_dataset`` for the engine.

Generated data never deletes what it did not write: a dataset whose folders differ from its
manifest is refused (named file by file) rather than regenerated; a regeneration happens only
when asked for (``overwrite=True``, ``mbf synth --force``), repeats the dataset's own seed and
options unless others are given, and removes only the generator's files; a folder holding
anything else is refused. Only an unfinished generation whose marker records its seed and
options is finished without being asked, and only when its folders hold nothing else.
"""
from __future__ import annotations

import csv
import dataclasses
import logging
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DatasetError
from ..files import FolderLock, atomic_write, make_folder, remove_stale_temporaries, write_json
from .inventory import (FOLDERS, Record, Survey, is_foreign, listing, marker_content, read_record,
                        regenerate_command, survey_dataset)
from .options import (_INCOMPLETE_MARKER, ANNOTATIONS_NAME, GENERATOR_VERSION, MANIFEST_NAME, SPLIT_DIRS,
                      SynthOptions, SynthSummary)
from .plan import _plan, image_files, planned_files
from .render import ImageSpec, Rendered, render_image
from .scenes import make_cameras

log = logging.getLogger(__package__)  # one logger for the package ("mbf.synthetic")


def make_options(num_ids: int | None = None, **options) -> SynthOptions:
    """Validated :class:`SynthOptions`; unknown or out-of-range options raise DatasetError."""
    if num_ids is not None:
        options = {**options, "num_ids": int(num_ids)}
    # lists (JSON's, say) become the tuples SynthOptions holds, so that equal options compare equal
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    try:
        opts = SynthOptions(**options)
    except TypeError as exc:
        known = ", ".join(f.name for f in dataclasses.fields(SynthOptions))
        raise DatasetError(f"synthetic dataset: {exc}; known options: {known}") from None
    opts.validate()
    return opts


def _resolve(record: Record | None, seed: int | None, num_ids: int | None, options: dict) -> tuple[int, SynthOptions]:
    """The seed and options of a generation: those given, the others from ``record`` (the dataset's
    own: a regeneration repeats it unless told otherwise), else 0 and the defaults."""
    if seed is None:
        seed = record.seed if record else 0
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        # checked before anything is written: numpy's seeding refuses it only after the folders exist
        raise DatasetError(f"synthetic dataset seed must be an integer >= 0, got {seed!r}")
    given = {**options, **({"num_ids": num_ids} if num_ids is not None else {})}
    return int(seed), make_options(**{**(dataclasses.asdict(record.options) if record else {}), **given})


def _lock(root: Path) -> FolderLock:
    return FolderLock.for_folder(root, f"synthetic dataset {root}",
                                 "wait for that generation to finish, then run again")


def _refusal(survey: Survey, seed: int | None = None) -> str:
    """Why a folder that holds no complete dataset is neither used nor replaced, and what to do.

    The command given regenerates with the dataset's own seed and options; ``seed`` stands in
    for an unfinished generation's when its marker does not record it.
    """
    root = survey.root
    if survey.state == "foreign":
        return (f"{root} is not empty and holds no synthetic dataset (no {MANIFEST_NAME}); nothing was changed: "
                "choose a new or empty folder (for training: another DATASETS.ROOT_DIR), or move its content away")
    command = regenerate_command(root, seed if survey.state == "unfinished" else None)
    if survey.state == "unfinished":
        return (f"synthetic dataset {root}: a generation did not finish and its marker {_INCOMPLETE_MARKER} does not "
                "record its seed and options (an older mbf or generator version wrote it); nothing was changed: "
                f"regenerate it on purpose with: {command}")
    foreign, damaged = survey.foreign(), survey.missing or survey.problems
    move = "move the files the generator did not write out of its split and mask folders"
    advice = (f"{move}, then regenerate it on purpose with: {command}" if foreign and damaged
              else f"{move} (the rest is as generated)" if foreign else f"regenerate it on purpose with: {command}")
    return (f"synthetic dataset {root} differs from its manifest {MANIFEST_NAME}: {'; '.join(survey.differences())}; "
            f"nothing was changed: {advice}")


def _check_request(survey: Survey, seed: int, opts: SynthOptions, overwrite: bool) -> None:
    """Raise DatasetError unless writing ``seed``/``opts`` into the surveyed folder was asked for."""
    state, root = survey.state, survey.root
    if state != "foreign" and (overwrite or state == "missing"):
        return
    if state == "unfinished" and survey.marker == Record(seed, opts):
        return  # finishing that generation rewrites its own files only
    if state == "complete":
        raise DatasetError(f"{root} already holds a synthetic dataset (seed {survey.manifest.seed}, generator "
                           f"v{survey.manifest.version}); nothing was changed: pass --force (overwrite=True) to "
                           "replace it")
    if state == "unfinished" and survey.marker is not None:
        raise DatasetError(f"synthetic dataset {root} holds a generation that did not finish, with seed "
                           f"{survey.marker.seed} and other options than those asked for; nothing was changed: "
                           f"finish it with `mbf synth --out {root}` (no options), or pass --force (overwrite=True) "
                           "to replace it")
    raise DatasetError(_refusal(survey, seed))


def _replaceable(survey: Survey, seed: int, opts: SynthOptions) -> set[str]:
    """The entries of the split and mask folders that a new generation may remove; DatasetError
    naming the others when there are any (then nothing is removed)."""
    guessed = set()
    if survey.state == "unfinished" and survey.marker is None:
        # a marker without its record: that generation's files are taken to be those this one writes
        guessed = planned_files(seed, opts)
    if foreign := survey.foreign(guessed):
        raise DatasetError(f"cannot write the synthetic dataset in {survey.root}: its split and mask folders hold "
                           f"{listing(foreign, '{n} file{s} the generator did not write')}; nothing was deleted: "
                           "move them out of those folders, then run again")
    return survey.present & (survey.own | guessed)


def _clear(root: Path, generated: set[str]) -> None:
    """Remove an earlier generation's images and masks, temporaries, annotations and, last, manifest."""
    for rel in sorted(generated):
        if not (root / rel).is_dir():  # the mask folders are the generator's too, but stay
            (root / rel).unlink(missing_ok=True)
    for folder in ("", *FOLDERS):
        remove_stale_temporaries(root / folder)
    for name in (ANNOTATIONS_NAME, MANIFEST_NAME):
        (root / name).unlink(missing_ok=True)


def _write_image(path: Path, array: np.ndarray, **params) -> None:
    with atomic_write(path, "wb", fsync=False) as fh:  # many small files that can be made again
        Image.fromarray(array).save(fh, **params)


def _save(rendered: Rendered, spec: ImageSpec, root: Path, quality: int) -> None:
    image, mask = image_files(spec.split, spec.stem)
    _write_image(root / image, rendered.image, format="JPEG", quality=quality, subsampling=0, optimize=False)
    _write_image(root / mask, rendered.labels, format="PNG", compress_level=6)


def _write(root: Path, seed: int, opts: SynthOptions, generated: set[str]) -> SynthSummary:
    """Replace the files in ``generated`` by the dataset of ``seed`` and ``opts`` (the caller holds the lock).

    The marker, which records the seed and options, is written first and removed after the
    manifest, which is written last: whatever point a crash stops at, the folder tells what is whose.
    """
    start = time.perf_counter()
    write_json(root / _INCOMPLETE_MARKER, marker_content(seed, opts))
    _clear(root, generated)
    for folder in FOLDERS:
        make_folder(root / folder)

    specs, apps, identities = _plan(seed, opts)
    cams = make_cameras(seed, opts)
    occlusion: dict[str, dict[str, int]] = {s: {} for s in SPLIT_DIRS}
    rows = []
    for spec in specs:
        rendered = render_image(spec, apps[spec.pid], cams[spec.camid - 1], seed, opts)
        _save(rendered, spec, root, opts.jpeg_quality)
        occlusion[spec.split][spec.occlusion] = occlusion[spec.split].get(spec.occlusion, 0) + 1
        rows.append((spec.split, f"{spec.stem}.jpg", spec.pid, spec.camid, rendered.view, spec.occlusion,
                     f"{rendered.visible:.3f}"))
    with atomic_write(root / ANNOTATIONS_NAME, "w") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(("split", "image", "pid", "camid", "view", "occlusion", "visible"))
        writer.writerows(rows)

    counts = {s: sum(1 for sp in specs if sp.split == s) for s in SPLIT_DIRS}
    summary = SynthSummary(str(root), seed, GENERATOR_VERSION, opts.to_dict(), counts, identities,
                           {s: dict(sorted(v.items())) for s, v in occlusion.items()})
    write_json(root / MANIFEST_NAME, summary.to_dict(), indent=1, sort_keys=True)
    (root / _INCOMPLETE_MARKER).unlink()
    summary.seconds = time.perf_counter() - start
    log.info("synthetic dataset: %d images in %s (%.1f s)", len(specs), root, summary.seconds)
    return summary


def generate(out_dir: str | os.PathLike, seed: int | None = None, num_ids: int | None = None, *,
             overwrite: bool = False, **options) -> SynthSummary:
    """Write the synthetic dataset to ``out_dir`` and return its summary.

    ``num_ids`` and ``options`` (fields of :class:`SynthOptions`) shape the dataset. A synthetic
    dataset already in ``out_dir`` is replaced only when ``overwrite``, with its own seed and
    options except those given, and only when its split and mask folders hold nothing but the
    generator's files; an unfinished generation is finished when asked for with its own seed
    and options (or none). A non-empty folder without a synthetic dataset is never touched.
    One process at a time: another one holding the folder's lock raises BusyError.
    """
    root = Path(out_dir)
    _resolve(read_record(root), seed, num_ids, options)  # bad options are refused before anything is written
    if is_foreign(root):  # nor is a lock file put into another dataset's folder
        raise DatasetError(_refusal(Survey(root, "foreign")))
    with _lock(root):
        survey = survey_dataset(root)
        chosen_seed, opts = _resolve(survey.record, seed, num_ids, options)
        _check_request(survey, chosen_seed, opts, overwrite)
        return _write(root, chosen_seed, opts, _replaceable(survey, chosen_seed, opts))


def up_to_date(dataset_dir: str | os.PathLike, seed: int | None = None, num_ids: int | None = None,
               **options) -> SynthSummary | None:
    """The complete, current dataset in ``dataset_dir`` when it is the one :func:`generate` would
    write with these arguments (unspecified ones meaning the dataset's own), else None."""
    survey = survey_dataset(dataset_dir)
    if survey.state != "complete" or survey.manifest.version != GENERATOR_VERSION:
        return None
    wanted = Record(*_resolve(survey.record, seed, num_ids, options))
    return survey.manifest if wanted == survey.record else None


def ensure_dataset(dataset_dir: str | os.PathLike, seed: int = 0, num_ids: int | None = None,
                   **options) -> SynthSummary:
    """The dataset in ``dataset_dir``, generated first when the folder is empty or missing.

    A complete synthetic dataset is used as it is, whatever seed and options it was made with
    (they are logged); an unfinished generation is finished with its recorded seed and options
    when its folders hold nothing else. Anything else raises :class:`DatasetError` naming the
    files and the command that regenerates on purpose: a dataset whose files differ from its
    manifest, an unfinished generation without a record, a folder holding another dataset.
    """
    root = Path(dataset_dir)
    survey = survey_dataset(root)
    if survey.state == "missing":
        log.info("synthetic dataset not found in %s; generating it (seed %d)", root, seed)
        return generate(root, seed, num_ids, **options)
    if survey.state == "unfinished" and survey.marker is not None:
        log.warning("synthetic dataset %s: a generation did not finish; finishing it with its recorded seed %d and "
                    "options", root, survey.marker.seed)
        return generate(root)
    if survey.state != "complete":
        raise DatasetError(_refusal(survey, seed))
    summary = survey.manifest
    if summary.version != GENERATOR_VERSION:
        log.warning("%s was made by synthetic generator version %d (this is %d); using it as it is "
                    "(make the current one with: %s)", root, summary.version, GENERATOR_VERSION,
                    regenerate_command(root))
    log.info("synthetic dataset %s: seed %d, %s", root, summary.seed, summary.counts)
    return summary
