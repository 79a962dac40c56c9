"""ONNX export: onnxruntime reproduces the PyTorch descriptor at any batch; the card travels with it."""
import json

import numpy as np
import onnx
import pytest
import torch

from mbf.cli import main
from mbf.config import load_config
from mbf.errors import InputError
from mbf.modeling import build_model_from_checkpoint
from mbf.retrieval import ModelCard
from mbf.retrieval.export import CARD_KEY, export_onnx, onnx_session, read_card, writable_output


@pytest.mark.parametrize("variant", ["mbf-stride16", "mbf-stride12", "baseline", "mbf-no-cameras"])
def test_onnxruntime_matches_pytorch_at_batch_1_and_5(tiny, variant):
    extra, dim = tiny.variants[variant]
    cfg = load_config(tiny.config, tiny.opts + extra)
    model = build_model_from_checkpoint(cfg, tiny.weights(extra=extra)).eval()
    card = ModelCard.from_config(cfg, model)
    report = export_onnx(model, card, tiny.tmp / "m.onnx")
    assert report.relative_error <= 1e-4
    session = onnx_session(report.path)
    cameras = card.num_cameras > 0
    assert [i.name for i in session.get_inputs()] == ["images", "cameras"][: 1 + cameras]
    for batch in (1, 5):
        images = torch.randn(batch, 3, 64, 32, generator=torch.Generator().manual_seed(batch))
        cams = torch.arange(batch) % 3 if cameras else None
        with torch.no_grad():
            expected = model(images, cam_label=cams).numpy()
        feeds = {"images": images.numpy(), **({"cameras": cams.numpy()} if cameras else {})}
        got = session.run(["descriptor"], feeds)[0]
        assert got.shape == (batch, dim)
        assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
    if cameras:  # the camera input is live in the graph (not a constant traced from the example batch)
        images = np.repeat(images[:1].numpy(), 2, axis=0)
        a, b = session.run(["descriptor"], {"images": images, "cameras": np.array([0, 2])})[0]
        assert np.abs(a - b).max() > 1e-3
    assert read_card(session, report.path) == card


def test_export_command_prints_the_check_and_stores_the_preprocessing(tiny, capsys):
    out = tiny.tmp / "model.onnx"
    assert main(["export", "--config_file", tiny.config, "--weights", tiny.weights(), "--out", str(out), *tiny.opts,
                 "INPUT.PIXEL_MEAN", "[0.4, 0.5, 0.6]"]) == 0
    printed = capsys.readouterr().out
    assert "relative error" in printed and "limit 1e-04" in printed
    error = float(printed.split("relative error ")[1].split()[0])
    assert error <= 1e-4
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    card = json.loads(props[CARD_KEY])
    assert card["preprocessing"] == {"size": [64, 32], "mean": [0.4, 0.5, 0.6], "std": [0.5, 0.5, 0.5],
                                     "interpolation": "bilinear"}
    assert card["dim"] == 288 and card["feat_norm"] is True and card["num_cameras"] == 3
    assert [b["name"] for b in card["layout"]] == ["global", "head", "upper body", "lower body", "shoes",
                                                    "recovered head", "recovered upper body",
                                                    "recovered lower body", "recovered shoes"]
    assert card["layout"][1] == {"name": "head", "start": 32, "stop": 64, "scale": 0.25}
    assert "do not normalise again" in card["inputs"]["images"]

    # the exported file, extracted with no config at all: nothing is said about keys the user never set
    images = tiny.images("crops", n=2)
    assert main(["extract", "--weights", str(out), "--images", str(tiny.tmp / "crops"), "--out",
                 str(tiny.tmp / "g.npz")]) == 0
    said = capsys.readouterr()
    assert "NUM_WORKERS" not in said.out + said.err and len(images) == 2


def test_export_bad_input_is_one_line_and_leaves_nothing(tiny, capsys, monkeypatch):
    weights = tiny.weights()

    def export(out, w=weights, *more):
        code = main(["export", "--config_file", tiny.config, "--weights", w, "--out", str(out), *more, *tiny.opts])
        err = [line for line in capsys.readouterr().err.strip().splitlines() if line]
        return code, err

    code, err = export(tiny.tmp / "m.onnx", str(tiny.tmp / "missing.pth"))
    assert code == 2 and "missing.pth" in err[0] and len(err) == 1
    other = tiny.weights("wide.pth", ["MODEL.VIT_EMBED_DIM", "48"])
    code, err = export(tiny.tmp / "m.onnx", other)
    assert code == 2 and "wide.pth" in err[0] and len(err) == 1  # a checkpoint that does not fit the config
    (tiny.tmp / "a_file").write_text("x")
    code, err = export(tiny.tmp / "a_file" / "m.onnx")
    assert code == 2 and "cannot write" in err[0] and "a_file" in err[0]
    (tiny.tmp / "exists.onnx").write_text("keep me")
    code, err = export(tiny.tmp / "exists.onnx")
    assert code == 2 and "already exists" in err[0] and (tiny.tmp / "exists.onnx").read_text() == "keep me"

    import mbf.retrieval.export as export_module

    monkeypatch.setattr(export_module, "PARITY_TOLERANCE", -1.0)  # any error is now too large
    code, err = export(tiny.tmp / "fails.onnx")
    assert code == 2 and "onnxruntime output differs" in err[0] and "relative error" in err[0]
    assert sorted(p.name for p in tiny.tmp.iterdir()) == ["a_file", "exists.onnx", "model.pth", "wide.pth"]


def test_a_failing_exporter_is_one_line_naming_the_output_and_leaves_no_new_folder(tiny, capsys, monkeypatch,
                                                                                    tmp_path):
    import mbf.retrieval.export as export_module

    def broken_export(*args, **kwargs):
        raise RuntimeError("Exporting the operator 'aten::fancy' to ONNX opset version 17 is not supported.\n"
                           "  more detail from inside the tracer")

    weights, base = tiny.weights(), tmp_path / "exports"
    base.mkdir()
    out = base / "new" / "deeper" / "m.onnx"
    monkeypatch.setattr(torch.onnx, "export", broken_export)
    code = main(["export", "--config_file", tiny.config, "--weights", weights, "--out", str(out), *tiny.opts])
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line]
    assert code == 2 and len(err) == 1
    assert "torch.onnx.export could not export" in err[0] and str(out) in err[0] and "aten::fancy" in err[0]
    assert "more detail" not in err[0]
    assert list(base.iterdir()) == []  # neither the file nor the folders made for it

    monkeypatch.undo()
    monkeypatch.setattr(export_module, "PARITY_TOLERANCE", -1.0)  # the parity check fails instead
    (base / "kept").mkdir()
    out = base / "kept" / "made" / "m.onnx"
    assert main(["export", "--config_file", tiny.config, "--weights", weights, "--out", str(out), *tiny.opts]) == 2
    assert [p.name for p in base.rglob("*")] == ["kept"]  # a folder that existed before stays


def test_checking_an_output_path_creates_nothing(tmp_path):
    out = tmp_path / "new" / "deeper" / "m.onnx"
    assert writable_output(out, what="ONNX output") == out
    assert list(tmp_path.iterdir()) == []  # neither folders nor the probe file
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(InputError, match="cannot write ONNX output .*a_file"):
        writable_output(tmp_path / "a_file" / "sub" / "m.onnx", what="ONNX output")
    assert [p.name for p in tmp_path.iterdir()] == ["a_file"]
