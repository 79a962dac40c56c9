"""Retrieval and part-mask pictures: files written, frames coloured by correctness, bad input refused."""
import numpy as np
import pytest
import torch
from PIL import Image

from mbf.errors import InputError
from mbf.evaluation import plot_part_masks, plot_retrieval
from mbf.evaluation.plots import CORRECT, PART_COLOURS, WRONG


def write_images(folder, n):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = folder / f"{i:04d}_c1.jpg"
        Image.fromarray(rng.integers(0, 256, (32, 16, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    return paths


def has_colour(png, hex_colour, tol=20):
    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    target = np.array([int(hex_colour[i: i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(rgb - target).max(-1) <= tol).sum())


def expected_frames(dist, q_pids, g_pids, q_cams, g_cams, topk):
    """(right, wrong) tiles of a retrieval picture, by a plain per-query loop: gallery items of
    the query's identity and camera left out, the rest sorted by distance (ties by index)."""
    right = wrong = 0
    for q in range(dist.shape[0]):
        valid = [g for g in range(dist.shape[1]) if not (g_pids[g] == q_pids[q] and g_cams[g] == q_cams[q])]
        for g in sorted(valid, key=lambda g: (float(dist[q, g]), g))[:topk]:
            right += g_pids[g] == q_pids[q]
            wrong += g_pids[g] != q_pids[q]
    return right, wrong


def framed_tiles(png, tiles):
    """How many of ``tiles`` framed tiles are green and how many red: every frame (and its
    title) has the same number of pixels, so the pixel counts split in proportion."""
    green, red = has_colour(png, CORRECT), has_colour(png, WRONG)
    assert green + red > 0
    right = round(tiles * green / (green + red))
    return right, tiles - right


def test_retrieval_picture_frames_right_green_and_wrong_red(tmp_path):
    paths = write_images(tmp_path, 8)
    q_paths, g_paths = paths[:2], paths[2:]
    q_pids, q_cams = [1, 2], [0, 0]
    g_pids, g_cams = [1, 2, 3, 1, 2, 3], [0, 1, 1, 1, 1, 1]
    dist = torch.rand(2, 6, generator=torch.Generator().manual_seed(0))
    dist[0, 0] = 0.0  # query 0's nearest item has its identity and camera: it must not be shown
    right, wrong = expected_frames(dist, q_pids, g_pids, q_cams, g_cams, topk=4)
    assert right + wrong == 8 and 0 < right < 8  # a mixed picture, so the test can tell the colours apart
    out = plot_retrieval(tmp_path / "sub" / "r.png", q_paths, g_paths, dist, q_pids, g_pids, q_cams, g_cams,
                         num_queries=2, topk=4)
    assert out.is_file() and Image.open(out).size[0] > 100
    assert framed_tiles(out, 8) == (right, wrong)
    # all wrong: no green frame; a missing gallery image becomes a grey tile, not an error
    out = plot_retrieval(tmp_path / "wrong.png", q_paths, g_paths[:-1] + [str(tmp_path / "gone.jpg")], dist,
                         [4, 5], g_pids, q_cams, g_cams, num_queries=2, topk=4)
    assert has_colour(out, CORRECT) == 0 and framed_tiles(out, 8) == (0, 8)
    assert has_colour(out, "#a0a0a0", tol=0) > 1000  # the grey tile of the missing image (a whole tile)
    with pytest.raises(InputError, match="shape"):
        plot_retrieval(tmp_path / "x.png", q_paths, g_paths, dist[:, :5], q_pids, g_pids, q_cams, g_cams)


def test_part_mask_picture_overlays_the_part_colours(tmp_path):
    maps = torch.zeros(3, 8, 4, dtype=torch.long)
    maps[:, :2] = 1  # head
    maps[:, 4:] = 3  # lower body
    out = plot_part_masks(tmp_path / "m.png", torch.zeros(3, 3, 32, 16), maps, titles=["a", "b", "c"], alpha=1.0)
    assert out.is_file()
    head, lower = ("#%02x%02x%02x" % tuple(int(c) for c in PART_COLOURS[k]) for k in (1, 3))
    assert has_colour(out, head) > 50 and has_colour(out, lower) > 50
    uint8 = np.full((2, 32, 16, 3), 200, dtype=np.uint8)  # [B,H,W,3] uint8 and full-resolution maps
    assert plot_part_masks(tmp_path / "u.png", uint8, np.ones((2, 32, 16), dtype=np.uint8)).is_file()
    with pytest.raises(InputError, match="0..4"):
        plot_part_masks(tmp_path / "bad.png", uint8, np.full((2, 8, 4), 7))
    with pytest.raises(InputError, match="label maps"):
        plot_part_masks(tmp_path / "bad.png", uint8, np.ones((3, 8, 4)))


def test_the_part_colours_follow_the_part_names_of_mbf_parts():
    import mbf.parts
    from mbf.evaluation import plots

    assert plots.PART_NAMES is mbf.parts.PART_NAMES
    assert len(PART_COLOURS) == len(mbf.parts.PART_NAMES)
