"""The synthetic occluded dataset: determinism, Market naming, masks, occlusion, ensure_dataset."""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mbf import synthetic as syn
from mbf.errors import DatasetError

MARKET = re.compile(r"([-\d]+)_c(\d)")
NAME = re.compile(r"^(\d{4})_c(\d)s1_(\d{6})_(\d{2})\.jpg$")
TINY = dict(num_ids=12, num_distractor_ids=2, train_images_per_id=3, gallery_images_per_id=4,
            distractor_images_per_id=2)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _parse(folder: Path) -> list[tuple[str, int, int]]:
    out = []
    for p in sorted(folder.glob("*.jpg")):
        pid, cam = map(int, MARKET.search(p.name).groups())
        out.append((p.name, pid, cam))
    return out


def _annotations(root: Path) -> list[dict]:
    with open(root / syn.ANNOTATIONS_NAME, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "Synthetic_Occluded"
    syn.generate(root, seed=0, **TINY)
    return root


def test_same_seed_same_bytes_other_seed_other_images(tiny, tmp_path):
    again = tmp_path / "again"
    syn.generate(again, seed=0, **TINY)
    first, second = _files(tiny), _files(again)
    assert list(first) == list(second)
    assert first == second  # images, masks, annotations and manifest, byte for byte

    other = tmp_path / "other"
    syn.generate(other, seed=1, **TINY)
    third = _files(other)
    jpgs = lambda files: [v for k, v in files.items() if k.endswith(".jpg")]  # noqa: E731
    assert len(jpgs(third)) == len(jpgs(first))
    assert set(jpgs(third)).isdisjoint(jpgs(first))


def test_layout_names_and_identities(tiny):
    opts = syn.make_options(**TINY)
    summary = syn.read_manifest(tiny)
    assert summary.seed == 0 and summary.version == syn.GENERATOR_VERSION
    splits = {s: _parse(tiny / s) for s in syn.SPLIT_DIRS}
    for split, items in splits.items():
        assert len(items) == summary.counts[split] > 0
        for name, pid, cam in items:
            assert NAME.match(name), name
            assert 1 <= pid <= 1501 and 1 <= cam <= opts.num_cameras
    assert len({n for items in splits.values() for n, _, _ in items}) == sum(summary.counts.values())

    train = {pid for _, pid, _ in splits[syn.TRAIN_DIR]}
    query = {pid for _, pid, _ in splits[syn.QUERY_DIR]}
    gallery = {pid for _, pid, _ in splits[syn.GALLERY_DIR]}
    assert train.isdisjoint(query) and train.isdisjoint(gallery)
    assert len(train) == opts.num_train_ids and len(query) == opts.num_test_ids
    assert len(gallery - query) == opts.num_distractor_ids
    # every training identity is seen by two cameras; every query has a match in another camera
    for pid in train:
        assert len({c for _, p, c in splits[syn.TRAIN_DIR] if p == pid}) >= 2
    for _, pid, cam in splits[syn.QUERY_DIR]:
        assert any(p == pid and c != cam for _, p, c in splits[syn.GALLERY_DIR])


def test_every_image_has_an_aligned_mask(tiny):
    opts = syn.make_options(**TINY)
    rows = {r["image"]: r for r in _annotations(tiny)}
    gains = []
    for split in syn.SPLIT_DIRS:
        masks = sorted((tiny / syn.MASK_DIR / split).glob("*.png"))
        assert [m.stem for m in masks] == sorted(p.stem for p in (tiny / split).glob("*.jpg"))
        for mpath in masks:
            img = np.asarray(Image.open(tiny / split / f"{mpath.stem}.jpg").convert("RGB"), np.float64)
            lbl = np.asarray(Image.open(mpath))
            assert lbl.dtype == np.uint8 and lbl.shape == img.shape[:2] == (opts.height, opts.width)
            assert lbl.max() <= 4 and (lbl > 0).any()
            if rows[mpath.stem + ".jpg"]["occlusion"] == "none":
                assert {1, 2, 3}.issubset(set(np.unique(lbl).tolist()))  # head, upper, lower always seen
                ys = np.nonzero((lbl > 0).any(axis=1))[0]
                assert ys[-1] - ys[0] >= 0.6 * opts.height  # a whole pedestrian
                gains.append(_explained(img, lbl) - _explained(img, np.roll(lbl, (5, 4), axis=(0, 1))))
    # the labels explain the pixel colours better where they are than when shifted by a few pixels
    assert np.mean(np.array(gains) > 0) >= 0.9 and np.median(gains) > 0.05


def _explained(img: np.ndarray, lbl: np.ndarray) -> float:
    """Share of the colour variance explained by the label regions (R^2 of per-label means)."""
    flat, keys = img.reshape(-1, 3), lbl.reshape(-1)
    total = ((flat - flat.mean(0)) ** 2).sum()
    within = sum(((flat[keys == k] - flat[keys == k].mean(0)) ** 2).sum() for k in np.unique(keys))
    return 1.0 - within / total


def test_queries_occluded_gallery_mostly_holistic(tiny):
    rows = _annotations(tiny)
    queries = [r for r in rows if r["split"] == syn.QUERY_DIR]
    assert queries and all(r["occlusion"] in syn.OCCLUDER_KINDS for r in queries)
    assert all(float(r["visible"]) < 0.97 for r in queries)
    assert np.mean([float(r["visible"]) for r in queries]) < 0.85
    lo, hi = syn.SynthOptions().visible_range
    occluded = [float(r["visible"]) for r in rows if r["occlusion"] != "none"]
    assert np.mean([lo <= v <= hi for v in occluded]) >= 0.8  # retries aim at visible_range
    gallery = [r for r in rows if r["split"] == syn.GALLERY_DIR]
    assert np.mean([r["occlusion"] == "none" for r in gallery]) >= 0.6
    # the occluded queries show fewer person pixels than the same identities' holistic gallery images
    area = lambda r: np.count_nonzero(np.asarray(Image.open(tiny / syn.MASK_DIR / r["split"] / (r["image"][:-4] + ".png"))))  # noqa: E731
    holistic = [area(r) for r in gallery if r["occlusion"] == "none"]
    assert np.mean([area(r) for r in queries]) < np.mean(holistic)


def test_cut_off_bodies_keep_their_scale_and_place():
    """A body leaving the frame is cut at its own scale: the rows below the frame's edge (or the
    columns past a side edge) are gone, what stays is exactly the holistic image's person there."""
    opts = syn.make_options(**TINY)
    cam = syn.make_cameras(0, opts)[0]
    app = syn.random_appearance(np.random.default_rng(5))
    lo, hi = opts.visible_range
    bottom_cuts = 0
    for index in range(16):
        holistic = syn.render_image(syn.ImageSpec(index, syn.QUERY_DIR, 1, 1, 1, "none"), app, cam, 0, opts)
        cut = syn.render_image(syn.ImageSpec(index, syn.QUERY_DIR, 1, 1, 1, "cutoff"), app, cam, 0, opts)
        assert cut.image.shape == holistic.image.shape and cut.labels.shape == holistic.labels.shape
        assert lo - 0.05 <= cut.visible <= hi + 0.05
        person, whole = cut.labels > 0, holistic.labels > 0
        assert np.array_equal(cut.labels[person], holistic.labels[person]) and not (person & ~whole).any()
        rows, cols = np.nonzero(person.any(axis=1))[0], np.nonzero(person.any(axis=0))[0]
        top_rows = np.zeros_like(whole)
        top_rows[:rows[-1] + 1] = True
        side = np.zeros_like(whole)
        side[:, cols[0]:cols[-1] + 1] = True
        # what stays is the whole person above the frame's bottom edge, or within its side edges
        assert np.array_equal(person, whole & top_rows) or np.array_equal(person, whole & side)
        if np.array_equal(person, whole & top_rows):
            bottom_cuts += 1
            assert 1 in np.unique(cut.labels[rows[0]:rows[0] + 4])  # the head on top
    assert bottom_cuts >= 6


def test_occluder_fills_hide_the_same_pixels_or_none():
    """The diagnostic fills keep every random draw: "background" hides exactly the body pixels the
    object hides, showing the background there instead (a frame cut is drawn the same);
    "none" is the unoccluded image."""
    cam = syn.make_cameras(0, syn.make_options(**TINY))[0]
    app = syn.random_appearance(np.random.default_rng(8))
    for index, kind in enumerate(("car", "person", "bush", "cutoff")):
        spec = syn.ImageSpec(index, syn.QUERY_DIR, 1, 1, 1, kind)
        obj, bg, none = (syn.render_image(spec, app, cam, 0, syn.make_options(**TINY, occluder_fill=fill))
                         for fill in syn.OCCLUDER_FILLS)
        holistic = syn.render_image(dataclasses.replace(spec, occlusion="none"), app, cam, 0, syn.make_options(**TINY))
        assert np.array_equal(none.labels, holistic.labels) and none.visible == 1.0
        if kind == "cutoff":  # the frame is the occluder: painted as background it is the same image
            assert bg.visible == obj.visible < 1.0
            assert np.array_equal(bg.labels, obj.labels) and np.array_equal(bg.image, obj.image)
            continue
        assert np.array_equal(bg.labels, obj.labels) and bg.visible == obj.visible < 1.0
        assert not np.array_equal(bg.image, obj.image)
        # where the object hid the body the filled image shows neither the body nor the object
        hidden = (holistic.labels > 0) & (obj.labels == 0)
        assert hidden.any()
        d_obj = np.abs(bg.image.astype(int) - obj.image.astype(int))[hidden].mean()
        d_body = np.abs(bg.image.astype(int) - holistic.image.astype(int))[hidden].mean()
        assert d_obj > 10 and d_body > 10


def test_draw_person_labels_exactly_the_drawn_pixels():
    rng = np.random.default_rng(3)
    bg = np.zeros((128, 64, 3), np.float32)
    bg[...] = (255, 0, 255)  # a colour no body part uses
    for view in ("front", "back", "side"):
        app = dataclasses.replace(syn.random_appearance(rng), lower_style="trousers")
        canvas = syn.Canvas(bg)
        pose = syn.Pose(foot_y=124, centre_x=32, height=110, view=view, facing=1, phase=0.7, lean=0.03)
        cover = syn.draw_person(canvas, app, pose)
        changed = np.any(canvas.img != bg, axis=-1)
        assert np.array_equal(changed, cover)
        assert np.array_equal(cover, canvas.lbl > 0)  # with trousers every drawn pixel is a part
        assert set(np.unique(canvas.lbl).tolist()) == {0, 1, 2, 3, 4}
        # an occluder person is drawn with background labels
        occluder = syn.Canvas(bg)
        syn.draw_person(occluder, app, pose, labelled=False)
        assert not occluder.lbl.any() and np.any(occluder.img != bg)


def test_ensure_dataset_is_idempotent_and_a_damaged_set_is_regenerated_only_on_purpose(tmp_path):
    root = tmp_path / "Synthetic_Occluded"
    first = syn.ensure_dataset(root, seed=0, **TINY)
    assert syn.dataset_status(root) == "complete"
    stamp = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    second = syn.ensure_dataset(root, seed=0, **TINY)
    assert second.counts == first.counts
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == stamp  # nothing rewritten
    # a complete dataset made with other options is used as it is
    assert syn.ensure_dataset(root, seed=5).counts == first.counts

    victim = next((root / syn.MASK_DIR / syn.QUERY_DIR).glob("*.png"))
    victim.unlink()
    assert syn.dataset_status(root) == "incomplete"
    assert syn.verify(root)
    with pytest.raises(DatasetError, match=victim.name):
        syn.ensure_dataset(root, seed=0, **TINY)
    assert not victim.exists()
    syn.generate(root, overwrite=True)  # the manifest's seed and options
    assert syn.dataset_status(root) == "complete" and victim.is_file()


def test_interrupted_generation_is_redone(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    calls = {"n": 0}
    real = syn.render_image

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(syn.writer, "render_image", failing)  # the name generate() calls
    with pytest.raises(KeyboardInterrupt):
        syn.generate(root, seed=0, **TINY)
    monkeypatch.setattr(syn.writer, "render_image", real)
    assert syn.dataset_status(root) == "incomplete"
    summary = syn.ensure_dataset(root, seed=0, **TINY)
    assert syn.dataset_status(root) == "complete"
    assert summary.counts == syn.read_manifest(root).counts


def test_refuses_to_touch_other_data(tmp_path):
    foreign = tmp_path / "Market-1501"
    (foreign / "query").mkdir(parents=True)
    (foreign / "query" / "0001_c1s1_000151_01.jpg").write_bytes(b"not ours")
    with pytest.raises(DatasetError, match="no synthetic dataset"):
        syn.ensure_dataset(foreign)
    with pytest.raises(DatasetError, match="no synthetic dataset"):
        syn.generate(foreign, overwrite=True, **TINY)
    assert (foreign / "query" / "0001_c1s1_000151_01.jpg").read_bytes() == b"not ours"

    ours = tmp_path / "ours"
    syn.generate(ours, seed=0, **TINY)
    with pytest.raises(DatasetError, match="--force"):
        syn.generate(ours, seed=1, **TINY)
    syn.generate(ours, seed=1, overwrite=True, **TINY)
    assert syn.read_manifest(ours).seed == 1


@pytest.mark.parametrize("bad", [dict(num_cameras=1), dict(num_cameras=7), dict(num_ids=1),
                                 dict(query_images_per_id=4), dict(query_occluded=1.5), dict(colour="red"),
                                 dict(visible_range=(0.9, 0.5)), dict(lighting=-1.0),
                                 dict(occluder_fill="transparent")])
def test_bad_options_raise_dataset_error(bad, tmp_path):
    with pytest.raises(DatasetError):
        syn.generate(tmp_path / "x", **bad)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("seed", [-1, 1.5, "0"])
def test_a_bad_seed_is_one_error_and_writes_nothing(seed, tmp_path):
    with pytest.raises(DatasetError, match="seed must be an integer >= 0"):
        syn.generate(tmp_path / "x", seed=seed, **TINY)
    assert not (tmp_path / "x").exists()


def test_default_dataset_size():
    opts = syn.make_options()
    specs, apps, ids = syn._plan(0, opts)
    assert ids == {"train": 200, "test": 100, "distractor": 50}
    assert 2000 <= len(specs) <= 4000
    assert os.path.basename(syn.DATASET_DIR_NAME) == "Synthetic_Occluded"


def test_engine_generates_the_synthetic_set_with_the_configured_seed(tmp_path, monkeypatch):
    from mbf.config import get_cfg
    from mbf.data import build as engine_datasets

    seen = {}

    def fake_ensure(root, seed=0, **options):
        seen["root"], seen["seed"] = Path(root), seed
        syn.generate(root, seed=seed, **TINY)

    monkeypatch.setattr(engine_datasets, "ensure_dataset", fake_ensure)
    cfg = get_cfg()
    cfg.merge_from_list(["DATASETS.NAMES", "synthetic_occ", "DATASETS.ROOT_DIR", str(tmp_path),
                         "DATASETS.SYNTHETIC_SEED", 7])
    dataset = engine_datasets.load_dataset(cfg, verbose=False)
    assert seen == {"root": tmp_path / syn.DATASET_DIR_NAME, "seed": 7}
    assert syn.read_manifest(tmp_path / syn.DATASET_DIR_NAME).seed == 7
    assert dataset.num_train_pids == syn.make_options(**TINY).num_train_ids


def test_a_dataset_of_an_older_generator_is_kept_with_a_warning_naming_the_command(tmp_path, caplog):
    root = tmp_path / syn.DATASET_DIR_NAME
    syn.generate(root, seed=3, **TINY)
    manifest = root / syn.MANIFEST_NAME
    content = json.loads(manifest.read_text())
    content["version"] = syn.GENERATOR_VERSION - 1
    manifest.write_text(json.dumps(content))
    before = _files(root)
    syn.log.addHandler(caplog.handler)  # direct: a training run may have stopped "mbf" logs reaching the root
    try:
        with caplog.at_level("WARNING", logger=syn.__name__):
            summary = syn.ensure_dataset(root, seed=3, **TINY)
    finally:
        syn.log.removeHandler(caplog.handler)
    assert summary.version == syn.GENERATOR_VERSION - 1 and _files(root) == before
    command = f"mbf synth --out {root} --seed 3 --ids 12 --distractors 2 --cameras 4 --train-per-id 3 --force"
    assert syn.regenerate_command(root) == command
    assert command in caplog.text
