"""TEST.FEAT_NORM, however it is spelled, is one decision: the evaluator, the model card, an
exported ONNX file's card, an extracted gallery and a search in it all normalise, or none does."""
import json

import numpy as np
import onnx
import pytest

import mbf.config
import mbf.retrieval.embedder
from mbf.cli import main
from mbf.config import load_config
from mbf.errors import ConfigError
from mbf.evaluation import Evaluator
from mbf.modeling import build_model
from mbf.retrieval import Gallery, ModelCard
from mbf.retrieval.export import CARD_KEY

# the seed's strings, YAML booleans, and the strings a command line gives
SPELLINGS = [pytest.param(value, normalise, id=name) for name, value, normalise in (
    ("yes", "yes", True), ("no", "no", False), ("yaml-true", True, True), ("yaml-false", False, False),
    ("string-True", "True", True), ("string-False", "False", False))]


def config(tiny, value):
    """The tiny model's config with TEST.FEAT_NORM set to ``value`` as loading a file would leave it."""
    cfg = load_config(tiny.config, tiny.opts, freeze=False)
    cfg.TEST.FEAT_NORM = value
    cfg.freeze()
    return cfg


def every_load_gives(monkeypatch, tiny, value):
    """Make every config the commands load hold TEST.FEAT_NORM ``value`` (yacs refuses a boolean for
    a key whose default is a string, so a boolean cannot be typed on the command line)."""
    real = mbf.config.load_config

    def load(config_file=None, opts=(), freeze=True):
        cfg = real(config_file, opts, freeze=False)
        cfg.TEST.FEAT_NORM = value
        if freeze:
            cfg.freeze()
        return cfg

    monkeypatch.setattr(mbf.config, "load_config", load)  # the commands import it when they run
    monkeypatch.setattr(mbf.retrieval.embedder, "load_config", load)  # Embedder.load (mbf search)


@pytest.mark.parametrize("value,normalise", SPELLINGS)
def test_the_evaluator_and_the_model_card_agree_on_every_spelling(tiny, value, normalise):
    cfg = config(tiny, value)
    assert Evaluator.from_config(cfg, num_query=2).feat_norm is normalise
    model = build_model(cfg, num_classes=5, camera_num=3, view_num=1, pretrained=False).eval()
    card = ModelCard.from_config(cfg, model)
    assert card.feat_norm is normalise
    assert ModelCard.from_json(card.to_json()).feat_norm is normalise
    assert ("L2-normalise before comparing" in json.loads(card.to_json())["output"]) is normalise


def test_a_spelling_that_is_no_switch_is_one_error_naming_the_key(tiny):
    cfg = config(tiny, "maybe")
    model = build_model(cfg, num_classes=5, camera_num=3, view_num=1, pretrained=False).eval()
    for build in (lambda: Evaluator.from_config(cfg, 2), lambda: ModelCard.from_config(cfg, model)):
        with pytest.raises(ConfigError, match="TEST.FEAT_NORM"):
            build()


@pytest.mark.parametrize("value,normalise", SPELLINGS)
def test_export_extract_and_search_follow_the_switch(tiny, capsys, monkeypatch, value, normalise):
    every_load_gives(monkeypatch, tiny, value)
    weights = tiny.weights()
    paths = tiny.images("gallery", 4)

    onnx_file = tiny.tmp / "model.onnx"
    assert main(["export", "--config_file", tiny.config, "--weights", weights, "--out", str(onnx_file),
                 *tiny.opts]) == 0
    props = {p.key: p.value for p in onnx.load(str(onnx_file)).metadata_props}
    assert ModelCard.from_json(props[CARD_KEY]).feat_norm is normalise

    out = tiny.tmp / "gallery.npz"
    assert tiny.extract(weights, tiny.tmp / "gallery", out) == 0
    gallery = Gallery.load(out)
    assert gallery.feat_norm is normalise
    unit = np.allclose(np.linalg.norm(gallery.feats, axis=1), 1.0, atol=1e-5)
    assert unit is normalise

    capsys.readouterr()
    assert main(["search", "--gallery", str(out), "--query", paths[1], "--topk", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = [line.split() for line in lines[[line.split() for line in lines].index(["rank", "distance", "path"]) + 1:]]
    found = [row[2] for row in table]
    assert found[0] == paths[1]
    # the query is embedded as the gallery was: its distances are the gallery's own
    rows = gallery.feats[[gallery.paths.index(p) for p in found]]
    expected = ((rows - gallery.feats[gallery.paths.index(paths[1])]) ** 2).sum(axis=1)
    assert np.allclose([float(row[1]) for row in table], expected, atol=1e-3, rtol=1e-3)
