"""Embedder.embed_boxes: a whole frame and boxes, as a tracker hands them over -> one descriptor per box;
and the bad input a tracker can produce, each handled as documented or refused naming the box or array."""
import numpy as np
import pytest

import mbf
from mbf.errors import InputError


@pytest.fixture
def emb(tiny):
    return mbf.Embedder.load(tiny.weights(), config=tiny.config, opts=tiny.opts, batch_size=2, threads=1)


@pytest.fixture
def frame():
    return np.random.default_rng(3).integers(0, 256, (48, 80, 3), dtype=np.uint8)


def test_each_box_gives_the_descriptor_of_its_rounded_and_clipped_crop(emb, frame):
    boxes = np.array([[10.4, 5.6, 30.5, 40.2, 0.9, 0],  # rounded: 10, 6, 30 (half to even), 40; score and class ignored
                      [-12, -3, 20, 30, 0.8, 0],        # reaches out of the frame at the top left: clipped
                      [70, 20, 95, 60, 0.7, 0],         # and at the bottom right
                      [0, 0, 80, 48, 0.6, 0]], np.float32)  # the whole frame
    crops = [frame[6:40, 10:30], frame[0:30, 0:20], frame[20:48, 70:80], frame]
    expected = emb.embed(crops, cameras=[1] * 4)
    got = emb.embed_boxes(frame, boxes, cameras=1)  # one camera for the stream, batches of 2
    assert got.shape == (4, emb.dim) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(emb.embed_boxes(frame[..., ::-1].copy(), boxes[:, :4], cameras=1, bgr=True), expected,
                               atol=1e-5)
    np.testing.assert_allclose(emb.embed_boxes(frame, boxes, cameras=[1, 1, 1, 1]), expected, atol=1e-5)
    # no camera: the embedder's unknown_camera (0), which gives other descriptors for this SIE model
    assert np.abs(emb.embed_boxes(frame, boxes) - expected).max() > 1e-3


@pytest.mark.parametrize("empty", [[], np.zeros((0,)), np.zeros((0, 4)), np.zeros((0, 6), np.float32)],
                         ids=["list", "(0,)", "(0, 4)", "(0, 6)"])
def test_no_boxes_give_no_rows(emb, frame, empty):
    out = emb.embed_boxes(frame, empty)
    assert out.shape == (0, emb.dim) and out.dtype == np.float32


def test_grey_and_alpha_frames_are_read_as_documented(emb, frame):
    boxes = [[5, 5, 40, 45], [30, 0, 80, 48]]
    grey = frame[..., 1]
    as_rgb = emb.embed_boxes(np.repeat(grey[..., None], 3, axis=2), boxes)
    np.testing.assert_allclose(emb.embed_boxes(grey, boxes), as_rgb, atol=1e-6)  # H x W
    np.testing.assert_allclose(emb.embed_boxes(grey[..., None], boxes), as_rgb, atol=1e-6)  # H x W x 1
    rgba = np.concatenate([frame, np.full(frame.shape[:2] + (1,), 7, np.uint8)], axis=2)
    np.testing.assert_allclose(emb.embed_boxes(rgba, boxes), emb.embed_boxes(frame, boxes), atol=1e-6)  # alpha dropped


@pytest.mark.parametrize("bad, message", [
    (np.zeros((48, 80, 3), np.float32), r"uint8 array \(0..255\).*got a float32 array of shape \(48, 80, 3\)"),
    (np.zeros((48, 80, 3), np.uint16), "got a uint16 array"),
    (np.zeros((48, 80, 2), np.uint8), r"got shape \(48, 80, 2\)"),
    (np.zeros((0, 80, 3), np.uint8), r"frame of shape \(0, 80, 3\) has no pixels"),
    ([[1, 2, 3]], "NumPy array H x W x 3, got a list"),
], ids=["float32", "uint16", "two channels", "no rows", "a list"])
def test_a_bad_frame_is_refused_naming_the_array(emb, bad, message):
    with pytest.raises(InputError, match=message):
        emb.embed_boxes(bad, [[0, 0, 10, 10]])


@pytest.mark.parametrize("boxes, message", [
    ([[0, 0, 10, 10], [5, np.nan, 20, 30], [1, 1, 2, 2]], r"box 1 of 3 \[5, nan, 20, 30\] has a NaN or infinite"),
    ([[0, 0, 10, 10], [0, 0, np.inf, 30]], r"box 1 of 2 .* NaN or infinite"),
    ([[30, 5, 10, 20]], r"box 0 of 1 \[30, 5, 10, 20\] is inverted \(x2 < x1 or y2 < y1\)"),
    ([[0, 0, 10, 10], [0, 0, 5, 5], [100, 60, 120, 90], [-30, 0, -5, 20]],
     r"box 2 of 4 \[100, 60, 120, 90\] has no pixel inside the 80 x 48 frame after rounding and clipping "
     r"\(1 more boxes like it\)"),
    ([[10.2, 5, 10.4, 30]], r"box 0 of 1 .* has no pixel inside"),  # 0.2 pixels wide: 0 x 25 after rounding
    ([10, 10, 20, 20], r"N x 4 array .* got shape \(4,\)"),
    ([[10, 10, 20]], r"got shape \(1, 3\)"),
    ([["a", 0, 1, 1]], "numeric N x 4 array"),
], ids=["nan", "inf", "inverted", "outside the frame", "under a pixel", "one flat box", "three columns", "text"])
def test_a_bad_box_is_refused_naming_it(emb, frame, boxes, message):
    with pytest.raises(InputError, match=message):
        emb.embed_boxes(frame, boxes)


def test_a_crop_without_pixels_is_refused_naming_it(emb, frame):
    with pytest.raises(InputError, match=r"image 1: image array of shape \(0, 5, 3\) has no pixels"):
        emb.embed([frame, np.zeros((0, 5, 3), np.uint8)])
    one_pixel = emb.embed([frame[:1, :1]])  # a 1 x 1 crop has pixels: embedded like any other (documented)
    assert one_pixel.shape == (1, emb.dim) and np.isfinite(one_pixel).all()
