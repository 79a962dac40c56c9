"""The dataset on disk: which images exist (the plan), Market layout, manifest, verify/status, generation."""
from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ...errors import DatasetError
from .options import (_INCOMPLETE_MARKER, _FORMAT, ANNOTATIONS_NAME, GALLERY_DIR, GENERATOR_VERSION, MANIFEST_NAME,
                      MASK_DIR, OCCLUDER_KINDS, QUERY_DIR, SPLIT_DIRS, TRAIN_DIR, SynthOptions, SynthSummary)
from .appearance import Appearance, IdentityPool, similar_appearance
from .render import ImageSpec, Rendered, render_image
from .scenes import make_cameras

log = logging.getLogger(__package__)  # one logger for the package ("mbf.data.synthetic")


def _plan(seed: int, opts: SynthOptions) -> tuple[list[ImageSpec], dict[int, Appearance], dict]:
    """Identities, their appearances and every image's split, camera, frame and occluder."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 1])))
    n_train, n_test, n_dis = opts.num_train_ids, opts.num_test_ids, opts.num_distractor_ids
    pids = rng.permutation(np.arange(1, n_train + n_test + n_dis + 1))  # interleaved id numbers, as in Market
    groups = {"train": sorted(pids[:n_train].tolist()), "test": sorted(pids[n_train:n_train + n_test].tolist()),
              "distractor": sorted(pids[n_train + n_test:].tolist())}

    apps: dict[int, Appearance] = {}
    pools = {"train": IdentityPool(), "test": IdentityPool()}  # the gallery holds test and distractor identities
    for group in ("train", "test", "distractor"):
        earlier: list[int] = []
        pool = pools["train" if group == "train" else "test"]
        for pid in groups[group]:
            arng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 4, pid])))
            if earlier and arng.random() < opts.similar_fraction:
                apps[pid] = similar_appearance(apps[earlier[int(arng.integers(len(earlier)))]], arng)
            else:
                apps[pid] = pool.draw(arng)
            earlier.append(pid)

    kinds_p = np.asarray(opts.occluder_weights, np.float64)
    kinds_p = kinds_p / kinds_p.sum()
    frames = rng.integers(1, 200, size=opts.num_cameras)
    specs: list[ImageSpec] = []

    def add(split: str, pid: int, cams, occluded_p: float) -> None:
        for cam in cams:
            frames[cam] += rng.integers(3, 80)
            occ = str(rng.choice(OCCLUDER_KINDS, p=kinds_p)) if rng.random() < occluded_p else "none"
            specs.append(ImageSpec(len(specs), split, int(pid), int(cam) + 1, int(frames[cam]), occ))

    C = opts.num_cameras
    for pid in groups["train"]:  # at least two cameras per training identity
        first = rng.choice(C, size=2, replace=False)
        add(TRAIN_DIR, pid, np.concatenate([first, rng.integers(0, C, opts.train_images_per_id - 2)]),
            opts.train_occluded)
    for pid in groups["test"]:
        add(QUERY_DIR, pid, rng.choice(C, size=opts.query_images_per_id, replace=False), opts.query_occluded)
        n = opts.gallery_images_per_id  # every camera first, so each query has a cross-camera match
        cams = rng.permutation(C)[:n]
        add(GALLERY_DIR, pid, np.concatenate([cams, rng.integers(0, C, max(0, n - C))]), opts.gallery_occluded)
    for pid in groups["distractor"]:
        add(GALLERY_DIR, pid, rng.integers(0, C, opts.distractor_images_per_id), opts.gallery_occluded)
    return specs, apps, {k: len(v) for k, v in groups.items()}



def _save(rendered: Rendered, spec: ImageSpec, root: Path, quality: int) -> None:
    Image.fromarray(rendered.image).save(root / spec.split / f"{spec.stem}.jpg", format="JPEG",
                                         quality=quality, subsampling=0, optimize=False)
    Image.fromarray(rendered.labels).save(root / MASK_DIR / spec.split / f"{spec.stem}.png", format="PNG",
                                          compress_level=6)


def _ours(root: Path) -> bool:
    return (root / MANIFEST_NAME).is_file() or (root / _INCOMPLETE_MARKER).exists()


def _clear(root: Path) -> None:
    """Remove what a previous run wrote (only called when the folder is known to be ours)."""
    for name in (*SPLIT_DIRS, MASK_DIR):
        if (root / name).is_dir():
            shutil.rmtree(root / name)
    for name in (MANIFEST_NAME, ANNOTATIONS_NAME):
        if (root / name).is_file():
            (root / name).unlink()


def make_options(num_ids: int | None = None, **options) -> SynthOptions:
    """Validated :class:`SynthOptions`; unknown or out-of-range options raise DatasetError."""
    if num_ids is not None:
        options = {**options, "num_ids": int(num_ids)}
    try:
        opts = SynthOptions(**options)
    except TypeError as exc:
        known = ", ".join(f.name for f in dataclasses.fields(SynthOptions))
        raise DatasetError(f"synthetic dataset: {exc}; known options: {known}") from None
    opts.validate()
    return opts


def generate(out_dir: str | os.PathLike, seed: int = 0, num_ids: int | None = None, *, overwrite: bool = False,
             **options) -> SynthSummary:
    """Write the synthetic dataset to ``out_dir`` and return its summary.

    ``num_ids`` and ``options`` (fields of :class:`SynthOptions`) shape the dataset. An
    existing synthetic dataset in ``out_dir`` is replaced only when ``overwrite``; a
    non-empty folder without a synthetic manifest (another dataset, say) is never touched.
    """
    opts = make_options(num_ids, **options)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        # checked before anything is written: numpy's seeding refuses it only after the folders exist
        raise DatasetError(f"synthetic dataset seed must be an integer >= 0, got {seed!r}")
    root = Path(out_dir)
    state = dataset_status(root)
    if state == "foreign":
        raise DatasetError(f"{root} is not empty and holds no synthetic dataset (no {MANIFEST_NAME}); "
                           "choose a new or empty output folder")
    if state in ("complete", "incomplete") and not overwrite:
        raise DatasetError(f"{root} already holds a synthetic dataset ({state}); "
                           "pass --force (overwrite=True) to replace it")
    start = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    (root / _INCOMPLETE_MARKER).write_text("generation in progress or interrupted\n")
    _clear(root)
    for split in SPLIT_DIRS:
        (root / split).mkdir()
        (root / MASK_DIR / split).mkdir(parents=True)

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
    with open(root / ANNOTATIONS_NAME, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(("split", "image", "pid", "camid", "view", "occlusion", "visible"))
        writer.writerows(rows)

    counts = {s: sum(1 for sp in specs if sp.split == s) for s in SPLIT_DIRS}
    summary = SynthSummary(str(root), int(seed), GENERATOR_VERSION, opts.to_dict(), counts, identities,
                           {s: dict(sorted(v.items())) for s, v in occlusion.items()})
    with open(root / MANIFEST_NAME, "w", encoding="utf-8") as fh:
        json.dump(summary.to_dict(), fh, indent=1, sort_keys=True)
        fh.write("\n")
    (root / _INCOMPLETE_MARKER).unlink()
    summary.seconds = time.perf_counter() - start
    log.info("synthetic dataset: %d images in %s (%.1f s)", len(specs), root, summary.seconds)
    return summary


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
    except (OSError, ValueError, KeyError, TypeError):
        return None


def verify(dataset_dir: str | os.PathLike) -> list[str]:
    """Problems found in a generated dataset (empty when it is complete)."""
    root = Path(dataset_dir)
    if (root / _INCOMPLETE_MARKER).exists():
        return ["generation did not finish"]
    summary = read_manifest(root)
    if summary is None:
        return [f"no readable {MANIFEST_NAME}"]
    problems = []
    for split in SPLIT_DIRS:
        expected = summary.counts.get(split)
        for folder, ext in ((root / split, ".jpg"), (root / MASK_DIR / split, ".png")):
            found = sum(1 for e in os.scandir(folder) if e.name.endswith(ext)) if folder.is_dir() else 0
            if found != expected:
                problems.append(f"{folder} has {found} {ext} files, the manifest says {expected}")
    return problems


def dataset_status(dataset_dir: str | os.PathLike) -> str:
    """'missing', 'complete', 'incomplete' (ours, unfinished or damaged) or 'foreign'."""
    root = Path(dataset_dir)
    if _ours(root):
        return "incomplete" if verify(root) else "complete"
    if root.is_dir() and any(os.scandir(root)):
        return "foreign"
    if root.exists() and not root.is_dir():
        return "foreign"
    return "missing"


def regenerate_command(dataset_dir: str | os.PathLike, seed: int) -> str:
    """The command that replaces the dataset in ``dataset_dir`` with the current generator's."""
    return f"mbf synth --out {dataset_dir} --seed {seed} --force"


def ensure_dataset(dataset_dir: str | os.PathLike, seed: int = 0, num_ids: int | None = None,
                   **options) -> SynthSummary:
    """Generate the dataset in ``dataset_dir`` unless a complete one is already there.

    A complete synthetic dataset is used as it is, whatever seed and options it was made
    with (they are logged), so a dataset made by ``mbf synth`` with other options is kept;
    an incomplete one (interrupted, files missing) is generated again; a folder holding
    another dataset's split folders raises :class:`DatasetError`.
    """
    root = Path(dataset_dir)
    state = dataset_status(root)
    if state == "complete":
        summary = read_manifest(root)
        if summary.version != GENERATOR_VERSION:
            log.warning("%s was made by synthetic generator version %d (this is %d); using it as it is "
                        "(make the current one with: %s)", root, summary.version, GENERATOR_VERSION,
                        regenerate_command(root, summary.seed))
        log.info("synthetic dataset %s: seed %d, %s", root, summary.seed, summary.counts)
        return summary
    if state == "incomplete":
        log.warning("synthetic dataset %s is incomplete (%s); generating it again", root, "; ".join(verify(root)))
        return generate(root, seed, num_ids, overwrite=True, **options)
    if state == "foreign":
        raise DatasetError(f"{root} is not empty but holds no synthetic dataset (no {MANIFEST_NAME}); "
                           "move its content away or point DATASETS.ROOT_DIR elsewhere")
    log.info("synthetic dataset not found in %s; generating it (seed %d)", root, seed)
    return generate(root, seed, num_ids, **options)
