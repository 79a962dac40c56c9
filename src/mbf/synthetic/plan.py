"""The plan of a dataset: which images exist (split, identity, camera, frame, occluder), and their files."""
from __future__ import annotations

import numpy as np

from .appearance import Appearance, IdentityPool, similar_appearance
from .options import GALLERY_DIR, MASK_DIR, OCCLUDER_KINDS, QUERY_DIR, TRAIN_DIR, SynthOptions
from .render import ImageSpec


def _plan_images(seed: int, opts: SynthOptions) -> tuple[list[ImageSpec], dict[str, list[int]]]:
    """Every image's split, camera, frame and occluder, and the identities of each group.

    Cheap (no appearance is drawn): it also tells which files a generation writes.
    """
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 1])))
    n_train, n_test = opts.num_train_ids, opts.num_test_ids
    pids = rng.permutation(np.arange(1, n_train + n_test + opts.num_distractor_ids + 1))  # interleaved, as in Market
    groups = {"train": sorted(pids[:n_train].tolist()), "test": sorted(pids[n_train:n_train + n_test].tolist()),
              "distractor": sorted(pids[n_train + n_test:].tolist())}

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
    return specs, groups


def _appearances(seed: int, opts: SynthOptions, groups: dict[str, list[int]]) -> dict[int, Appearance]:
    """Each identity's appearance (its own random generator, so the image plan does not depend on it)."""
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
    return apps


def _plan(seed: int, opts: SynthOptions) -> tuple[list[ImageSpec], dict[int, Appearance], dict]:
    """Identities, their appearances and every image's split, camera, frame and occluder."""
    specs, groups = _plan_images(seed, opts)
    return specs, _appearances(seed, opts, groups), {k: len(v) for k, v in groups.items()}


def image_files(split: str, stem: str) -> tuple[str, str]:
    """An image's file and its part-label mask, relative to the dataset folder ('/'-separated)."""
    return f"{split}/{stem}.jpg", f"{MASK_DIR}/{split}/{stem}.png"


def planned_files(seed: int, opts: SynthOptions) -> set[str]:
    """The image and mask files (relative paths) that generating with ``seed`` and ``opts`` writes."""
    return {path for spec in _plan_images(seed, opts)[0] for path in image_files(spec.split, spec.stem)}
