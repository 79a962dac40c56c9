"""mbf.integrations.boxmot.BoxMOTReID offers what a BoxMOT tracker calls, without importing BoxMOT.

The tests of this file need no BoxMOT; tests/integrations/test_boxmot_trackers.py runs the class
inside real BoxMOT trackers where BoxMOT is installed."""
import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import mbf
from mbf.cli import main
from mbf.errors import InputError
from mbf.integrations.boxmot import BoxMOTReID

SRC = Path(__file__).resolve().parents[2] / "src" / "mbf"


@pytest.fixture
def model(tiny):
    weights, onnx_path = tiny.weights(), tiny.tmp / "m.onnx"
    assert main(["export", "--config_file", tiny.config, "--weights", weights, "--out", str(onnx_path), *tiny.opts]) == 0
    return weights, onnx_path


@pytest.fixture
def scene():
    """A BGR frame as OpenCV gives it, and detector boxes N x 4 float32 (x1, y1, x2, y2)."""
    frame = np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    boxes = np.array([[5.3, 4.0, 35.6, 70.2], [40, 10, 72, 74], [90, 30, 130, 95]], np.float32)  # the last one clipped
    return frame, boxes


def test_get_features_are_the_embedders_descriptors_of_the_bgr_frames_boxes_with_the_streams_camera(tiny, model, scene):
    weights, onnx_path = model
    frame, boxes = scene
    reid = BoxMOTReID.from_onnx(onnx_path, camera=2, threads=1)
    assert reid.embedding_dim == 288 and reid.input_shape == (64, 32) and reid.device == torch.device("cpu")
    expected = mbf.Embedder.load(weights, config=tiny.config, opts=tiny.opts).embed_boxes(
        np.ascontiguousarray(frame[..., ::-1]), boxes, cameras=2)  # the same frame in RGB
    got = reid.get_features(boxes, frame)
    assert got.shape == (3, 288) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert reid.get_features(np.empty((0, 4), np.float32), frame).shape == (0, 288)
    # the same from the checkpoint, and through the staged methods BoxMOT's encoder calls and times
    from_ckpt = BoxMOTReID.from_checkpoint(weights, tiny.config, tiny.opts, camera=2, threads=1)
    np.testing.assert_allclose(from_ckpt.get_features(boxes, frame), expected, atol=1e-4)
    for reid_model in (reid, from_ckpt):
        staged = reid_model.inference_postprocess(reid_model.forward(
            reid_model.inference_preprocess(reid_model.get_crops(boxes, frame))))
        np.testing.assert_allclose(staged, expected, atol=1e-4)
    assert "camera 2" in repr(reid)


def test_every_stream_has_its_own_camera(tiny, model, scene):
    _, onnx_path = model
    frame, boxes = scene
    first, second = BoxMOTReID.from_onnx(onnx_path, camera=0), BoxMOTReID.from_onnx(onnx_path, camera=1)
    assert np.abs(first.get_features(boxes, frame) - second.get_features(boxes, frame)).max() > 1e-3
    with pytest.raises(InputError, match=r"camera 3 of image 0 is not a camera of the model \(0..2\)"):
        BoxMOTReID.from_onnx(onnx_path, camera=3)


def test_bad_boxes_from_a_detector_are_refused_naming_the_box(model, scene):
    reid = BoxMOTReID.load(model[1])
    frame, boxes = scene
    boxes[1, 2] = np.nan
    with pytest.raises(InputError, match=r"box 1 of 3 .* NaN"):
        reid.get_features(boxes, frame)
    with pytest.raises(InputError, match="float32 array"):
        reid.get_features(boxes[:1], frame.astype(np.float32))


def test_mbf_never_imports_boxmot():
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            assert not any(n == "boxmot" or n.startswith("boxmot.") for n in names), f"{path} imports BoxMOT"
    probe = "import sys, mbf.integrations.boxmot\nprint('boxmot' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr
