"""`mbf export --camera K --input-normalisation imagenet`: one graph input, the consumer's normalisation
converted inside the graph, parity-checked like every export and recorded in the model card."""
import json

import numpy as np
import onnx
import pytest
import torch

import mbf
from mbf.cli import main
from mbf.config import load_config
from mbf.errors import InputError
from mbf.modeling import build_model_from_checkpoint
from mbf.retrieval import ModelCard
from mbf.retrieval.export import CARD_KEY, onnx_session, read_card

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def export(tiny, weights, out, *args, extra=()):
    return main(["export", "--config_file", tiny.config, "--weights", weights, "--out", str(out), *args,
                 *tiny.opts, *extra])


def normalised(pixels, mean, std):
    return ((pixels - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)).float()


def test_a_fixed_camera_and_imagenet_input_give_one_input_and_the_models_descriptor(tiny, capsys):
    weights, out = tiny.weights(), tiny.tmp / "boxmot.onnx"
    assert export(tiny, weights, out, "--camera", "2", "--input-normalisation", "imagenet") == 0
    printed = capsys.readouterr().out
    assert "camera 2 of the model's 3 is fixed in the graph" in printed
    assert "converted inside the graph to the model's" in printed
    session = onnx_session(out)
    assert [i.name for i in session.get_inputs()] == ["images"]
    pixels = torch.rand(4, 3, 64, 32, generator=torch.Generator().manual_seed(0))  # [0, 1] RGB
    got = session.run(["descriptor"], {"images": normalised(pixels, *IMAGENET).numpy()})[0]
    cfg = load_config(tiny.config, tiny.opts)
    model = build_model_from_checkpoint(cfg, weights).eval()
    with torch.no_grad():
        expected = model(normalised(pixels, (0.5,) * 3, (0.5,) * 3), cam_label=torch.full((4,), 2)).numpy()
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
    card = json.loads({p.key: p.value for p in onnx.load(str(out)).metadata_props}[CARD_KEY])
    assert card["camera"] == 2 and card["num_cameras"] == 3
    assert card["preprocessing"]["mean"] == list(IMAGENET[0]) and card["preprocessing"]["std"] == list(IMAGENET[1])
    assert card["model_normalisation"] == {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
    assert "cameras" not in card["inputs"] and "fixed in the graph" in card["inputs"]["note"]
    assert card["version"] == 1  # cards of earlier files still read (fields added, none changed)


def test_the_embedder_reads_such_a_file_as_the_checkpoint_with_that_camera(tiny):
    weights, out = tiny.weights(), tiny.tmp / "cam1.onnx"
    assert export(tiny, weights, out, "--camera", "1", "--input-mean", "0.4", "0.5", "0.6",
                  "--input-std", "0.2", "0.3", "0.25") == 0
    from_onnx = mbf.Embedder.load(out)
    assert from_onnx.card.camera == 1 and from_onnx.unknown_camera == 1
    assert from_onnx.card.preprocessing.mean == (0.4, 0.5, 0.6)
    from_ckpt = mbf.Embedder.load(weights, config=tiny.config, opts=tiny.opts)
    paths = tiny.images("crops", 3)  # re-ID names of cameras 1-3: the graph's camera wins, as documented
    np.testing.assert_allclose(from_onnx.embed(paths), from_ckpt.embed(paths, cameras=[1, 1, 1]), atol=1e-4)
    np.testing.assert_allclose(from_onnx.embed(paths, cameras=[1, None, 1]), from_ckpt.embed(paths, cameras=[1] * 3),
                               atol=1e-4)
    with pytest.raises(InputError, match="camera 2 of image 0: .* has camera 1 fixed in its graph"):
        from_onnx.embed(paths[:1], cameras=[2])


def test_a_card_without_the_new_fields_reads_as_before(tiny):
    weights = tiny.weights()
    cfg = load_config(tiny.config, tiny.opts)
    card = ModelCard.from_config(cfg, build_model_from_checkpoint(cfg, weights))
    text = card.to_json()
    assert "camera\"" not in text.replace("num_cameras", "") and "model_normalisation" not in text
    read = ModelCard.from_json(text)
    assert read == card and read.camera is None and read.model_normalisation is None
    assert card.for_graph(None, *IMAGENET).for_graph(None, (0.5,) * 3, (0.5,) * 3).input_conversion() is None


@pytest.mark.parametrize("args, extra, message", [
    (["--camera", "3"], [], "camera 3 is not a camera of the model (0..2)"),
    (["--camera", "0"], ["MODEL.SIE_CAMERA", "False"], "no camera embeddings"),
    (["--input-mean", "0.4", "0.5", "0.6"], [], "--input-mean and --input-std go together"),
    (["--input-normalisation", "imagenet", "--input-std", "1", "1", "1"], [], "not both"),
    (["--input-mean", "0", "0", "0", "--input-std", "1", "0", "1"], [], "input std must be positive"),
], ids=["camera out of range", "model without cameras", "mean alone", "both ways", "zero std"])
def test_impossible_options_are_refused_and_write_nothing(tiny, capsys, args, extra, message):
    out = tiny.tmp / "x.onnx"
    assert export(tiny, tiny.weights(extra=extra), out, *args, extra=extra) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_read_card_of_the_export_equals_the_card_exported(tiny):
    weights, out = tiny.weights(), tiny.tmp / "c.onnx"
    assert export(tiny, weights, out, "--camera", "0", "--input-normalisation", "imagenet") == 0
    cfg = load_config(tiny.config, tiny.opts)
    expected = ModelCard.from_config(cfg, build_model_from_checkpoint(cfg, weights)).for_graph(0, *IMAGENET)
    assert read_card(onnx_session(out), out) == expected
