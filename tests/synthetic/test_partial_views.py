"""What makes a half-visible synthetic person identifiable: identities kept apart region by region,
and every region's choice drawn where it can be seen."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from mbf import synthetic as syn


def _groups(seed: int, **options) -> dict[str, list[dict]]:
    """Region codes of the identities that can be confused with each other: the training ones, and
    the test ones with the gallery distractors."""
    opts = syn.make_options(**options)
    specs, apps, _ = syn._plan(seed, opts)
    pids = {g: sorted({s.pid for s in specs if s.split in splits})
            for g, splits in (("train", {syn.TRAIN_DIR}), ("gallery", {syn.GALLERY_DIR}))}
    return {g: [syn.region_codes(apps[p]) for p in ps] for g, ps in pids.items()}


@pytest.mark.parametrize("seed", [0, 1])
def test_any_two_identities_differ_in_two_regions_seen_with_the_legs_hidden(seed):
    for group, codes in _groups(seed).items():  # the default size: 200 training, 150 gallery identities
        assert len(codes) >= 150
        for a, b in itertools.combinations(codes, 2):
            differ = [r for r in syn.REGIONS if a[r] != b[r]]
            assert len(differ) >= 2, (group, a, b)
            assert sum(r in differ for r in syn.UPPER_REGIONS) >= 2, (group, a, b)


def _tops(seed: int) -> dict[str, list[tuple[int, int]]]:
    opts = syn.make_options()
    specs, apps, _ = syn._plan(seed, opts)
    groups = (("train", {syn.TRAIN_DIR}), ("gallery", {syn.GALLERY_DIR}))
    return {g: [syn.appearance.top_colours(apps[p]) for p in sorted({s.pid for s in specs if s.split in splits})]
            for g, splits in groups}


@pytest.mark.parametrize("seed", [0, 1])
def test_the_tops_colours_name_a_person_on_their_own_while_pairs_remain(seed):
    tops = _tops(seed)
    n = len(syn.appearance._PALETTE)
    pairs = n * (n - 1) + n  # ordered pairs of distinct clothing colours, and plain tops (196)
    assert len(tops["gallery"]) == 150 and len(set(tops["gallery"])) == 150  # every gallery identity its own
    train = tops["train"]
    assert len(train) == 200 and len(set(train)) == pairs  # more identities than pairs: every pair used,
    assert max(train.count(t) for t in set(train)) == 2  # and none more than twice


def test_identities_use_the_whole_range_of_each_region():
    codes = [c for group in _groups(0).values() for c in group]
    for region, at_least in (("head", 30), ("upper", 150), ("bag", 20), ("lower", 30), ("shoes", 8)):
        assert len({c[region] for c in codes}) >= at_least, region


def _draw(app, view: str):
    canvas = syn.Canvas(np.full((128, 64, 3), (255, 0, 255), np.float32))  # a colour no clothing uses
    pose = syn.Pose(foot_y=124, centre_x=32, height=110, view=view, facing=1, phase=0.3, lean=0.0)
    syn.draw_person(canvas, app, pose)
    return canvas


def _has(canvas, label: int, colour, tol: float = 40.0) -> bool:
    """Some pixels of the label's region are near ``colour`` (the shading darkens the sides)."""
    pixels = canvas.img[canvas.lbl == label]
    return bool((np.abs(pixels - np.asarray(colour)).max(axis=1) < tol).sum() >= 6)


def test_each_region_is_drawn_in_its_colours_from_every_side():
    rng = np.random.default_rng(11)
    seen = {p: 0 for p in syn.appearance.PATTERNS}
    for _ in range(40):
        app = syn.random_appearance(rng)
        for view in ("front", "back", "side"):
            canvas = _draw(app, view)
            assert _has(canvas, syn.UPPER, app.upper)
            if app.pattern != "plain":  # the top's layout shows its second colour from every side
                assert _has(canvas, syn.UPPER, app.upper2), (app.pattern, view)
            if app.hat is not None:
                assert _has(canvas, syn.HEAD, app.hat), view
            if app.bag != "none" and not (app.bag == "backpack" and view == "side"):
                assert _has(canvas, syn.UPPER, app.bag_colour, tol=45.0), (app.bag, view)
            assert _has(canvas, syn.SHOES, app.shoes)
        seen[app.pattern] += 1
    assert min(seen.values()) >= 3


def test_look_alikes_are_not_kept_apart():
    opts = syn.make_options(num_ids=30, num_distractor_ids=0, similar_fraction=1.0)
    _, apps, _ = syn._plan(0, opts)
    assert sum(not syn.region_codes(a) for a in apps.values()) >= 20  # copies carry no region codes


def test_the_visible_parts_identify_occluded_queries_far_above_chance(tmp_path, capsys, benchmark_script):
    """benchmarks/demo_probe.py: nearest gallery image by the mean colours of the parts a query shows."""
    probe = benchmark_script("demo_probe")
    root = tmp_path / "ds"
    summary = syn.generate(root, seed=0, num_ids=30, num_distractor_ids=5, train_images_per_id=2)
    result = probe.probe(str(root))
    assert result["all"][1] == summary.counts[syn.QUERY_DIR]
    assert sum(n for k, (_, n) in result.items() if k != "all") == result["all"][1]
    gallery_ids = summary.identities["test"] + summary.identities["distractor"]
    assert result["all"][0] > 3 * 100 / gallery_ids  # chance is one in the gallery's identities
    assert probe.main([str(root)]) == 0 and "| all occluded |" in capsys.readouterr().out
