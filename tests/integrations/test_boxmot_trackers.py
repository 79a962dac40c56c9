"""BoxMOTReID inside real BoxMOT trackers, and an `mbf export --camera K --input-normalisation imagenet`
file run unchanged by BoxMOT's own ONNX backend, with BoxMOT's run-time installs and downloads prevented.

Skipped, with the reason shown, only where BoxMOT is not importable (it is AGPL-3.0 and never a
dependency of mbf: the `tracking` extra installs it for these tests)."""
import socket

import numpy as np
import pytest

from mbf.cli import main
from mbf.integrations.boxmot import BoxMOTReID

boxmot = pytest.importorskip("boxmot", reason="BoxMOT is not installed (pip install -e '.[tracking]')")


@pytest.fixture
def no_installs_or_downloads(monkeypatch):
    """BoxMOT's pip installs, weight downloads and any network connection fail the test."""
    from boxmot.utils import checks

    def refuse(*args, **kwargs):
        raise AssertionError(f"BoxMOT tried to install or download at run time: {args[1:]} {kwargs}")

    monkeypatch.setattr(checks.RequirementsChecker, "_install_packages", refuse)
    monkeypatch.setattr(checks.RequirementsChecker, "_run_install", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    from boxmot.resources import download

    monkeypatch.setattr(download, "download_file", refuse)


def clip(frames=8):
    """Three coloured walkers on a noisy 120 x 200 BGR background, and their boxes N x 6 (xyxy, conf, cls)."""
    rng = np.random.default_rng(0)
    colours = [(30, 30, 200), (200, 60, 30), (40, 180, 40)]
    for t in range(frames):
        frame = rng.integers(90, 140, (120, 200, 3), dtype=np.uint8)
        dets = []
        for k, colour in enumerate(colours):
            x, y = 10 + 60 * k + 3 * t, 20 + 5 * k
            frame[y:y + 64, x:x + 32] = colour
            frame[y + 8:y + 20, x + 8:x + 24] = 255 - np.array(colour, np.uint8)
            dets.append([x, y, x + 32, y + 64, 0.9, 0])
        yield frame, np.array(dets, np.float32)


@pytest.mark.parametrize("tracker_name", ["BotSort", "StrongSort", "DeepOcSort"])
def test_a_boxmot_tracker_takes_the_class_as_its_reid_model(tiny, no_installs_or_downloads, tracker_name):
    onnx_path = tiny.tmp / "m.onnx"
    assert main(["export", "--config_file", tiny.config, "--weights", tiny.weights(), "--out", str(onnx_path),
                 *tiny.opts]) == 0
    reid = BoxMOTReID.from_onnx(onnx_path, camera=1, threads=1)
    calls = []
    get_features = reid.get_features
    reid.get_features = lambda xyxys, img: calls.append((np.asarray(xyxys).shape, img.shape)) or get_features(xyxys, img)
    kwargs = {"use_cmc": False} if tracker_name == "BotSort" else {}
    tracker = getattr(boxmot, tracker_name)(reid_model=reid, **kwargs)
    for frame, dets in clip():
        tracks = tracker.update(dets, frame)
    assert calls and all(shape == ((3, 4), (120, 200, 3)) for shape in calls)
    assert tracks.shape[0] == 3 and sorted(tracks[:, 4].astype(int).tolist()) == sorted(set(tracks[:, 4].astype(int)))


def test_boxmots_onnx_backend_runs_an_export_for_it_unchanged(tiny, no_installs_or_downloads, monkeypatch):
    from boxmot.reid.backends.onnx_backend import ONNXBackend
    from boxmot.reid.core import ReID

    weights, onnx_path = tiny.weights(), tiny.tmp / "boxmot.onnx"
    assert main(["export", "--config_file", tiny.config, "--weights", weights, "--out", str(onnx_path),
                 "--camera", "1", "--input-normalisation", "imagenet", *tiny.opts]) == 0
    # BoxMOT pins onnxruntime==1.24.3 and pip-installs it at run time unless that exact version is there;
    # the onnxruntime already installed runs the file, so the check is skipped (the install would fail the test)
    monkeypatch.setattr(ONNXBackend, "_ensure_onnxruntime_installed", lambda self: None)
    backend = ReID(weights=onnx_path, device="cpu").model
    assert backend.input_shape == (64, 32)
    frame, dets = next(clip())  # crops of exactly 32 x 64: no resizing on either side, so equal descriptors
    ours = BoxMOTReID.from_checkpoint(weights, tiny.config, tiny.opts, camera=1, threads=1)
    np.testing.assert_allclose(backend.get_features(dets[:, :4], frame), ours.get_features(dets[:, :4], frame),
                               atol=1e-4)
    # and the zero-adapter route: a tracker given only the file's path
    tracker = boxmot.BotSort(reid_weights=onnx_path, device="cpu", use_cmc=False)
    for frame, dets in clip():
        tracks = tracker.update(dets, frame)
    assert tracks.shape[0] == 3


def test_boxmots_runtime_wrapper_drives_the_staged_methods(tiny, no_installs_or_downloads):
    from boxmot.reid.core import ReID

    onnx_path = tiny.tmp / "m.onnx"
    assert main(["export", "--config_file", tiny.config, "--weights", tiny.weights(), "--out", str(onnx_path),
                 *tiny.opts]) == 0
    reid = BoxMOTReID.from_onnx(onnx_path, camera=0)
    frame, dets = next(clip())
    wrapped = ReID.from_backend(reid)  # preprocess -> get_crops, inference_preprocess; process -> forward; ...
    np.testing.assert_allclose(wrapped(frame, dets[:, :4]), reid.get_features(dets[:, :4], frame), atol=1e-5)
