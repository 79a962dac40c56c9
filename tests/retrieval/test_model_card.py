"""The model card takes the descriptor layout from the model and keeps its JSON format."""
import json
from types import SimpleNamespace

import pytest

from mbf.config import load_config
from mbf.modeling import build_model
from mbf.retrieval import ModelCard, Preprocessing
from mbf.retrieval.metadata import DescriptorBlock

# the card of the tiny baseline as mbf wrote it before the layout came from the model (ONNX files
# and galleries written then must load, and the same model must get the same card)
EARLIER_BASELINE_CARD = {
    "preprocessing": {"size": [64, 32], "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bilinear"},
    "dim": 32, "layout": [{"name": "global", "start": 0, "stop": 32, "scale": 1.0}], "feat_norm": True,
    "num_cameras": 3,
    "model": {"name": "transreid", "transformer_type": "vit_small_patch16_224_TransReID", "embed_dim": 32, "depth": 2,
              "stride": [16, 16], "neck_feat": "after"},
    "version": 1,
    "inputs": {"images": "float32 N x 3 x 64 x 32, RGB, already resized, scaled to [0, 1] and normalised with "
                         "mean/std (do not normalise again)",
               "cameras": "int64 N, camera ids in [0, 2]"},
    "output": "descriptor float32 N x 32, L2-normalise before comparing",
}


def tiny_model(tiny, *extra):
    cfg = load_config(tiny.config, tiny.opts + list(extra))
    return cfg, build_model(cfg, num_classes=5, camera_num=3, view_num=1, pretrained=False).eval()


@pytest.mark.parametrize("variant", ["mbf-stride16", "baseline"])
def test_the_card_layout_is_the_models_own(tiny, variant):
    extra, dim = tiny.variants[variant]
    cfg, model = tiny_model(tiny, *extra)
    card = ModelCard.from_config(cfg, model)
    assert card.dim == dim
    assert card.layout == tuple(DescriptorBlock(*block) for block in model.descriptor_layout())


def test_a_card_written_before_loads_and_is_what_the_same_model_gets_now(tiny):
    cfg, model = tiny_model(tiny, "MODEL.NAME", "transreid")
    earlier = ModelCard.from_json(json.dumps(EARLIER_BASELINE_CARD))
    assert earlier == ModelCard.from_config(cfg, model)
    assert json.loads(earlier.to_json()) == EARLIER_BASELINE_CARD


def test_a_model_of_another_architecture_describes_its_own_descriptor():
    def model(layout, dim):
        return SimpleNamespace(descriptor_layout=lambda: layout, descriptor_dim=dim,
                               backbone=SimpleNamespace(num_cameras=0))

    pre = Preprocessing((64, 32), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    halves = (("global", 0, 8, 1.0), ("texture", 8, 24, 0.5))
    card = ModelCard.for_model(model(halves, 24), pre, feat_norm=False, facts={"name": "mine"})
    assert [(b.name, b.start, b.stop, b.scale) for b in card.layout] == list(halves)
    assert (card.dim, card.num_cameras, card.feat_norm, card.model) == (24, 0, False, {"name": "mine"})
    with pytest.raises(AssertionError, match="covers 24 dims, the model gives 32"):
        ModelCard.for_model(model(halves, 32), pre, feat_norm=False)
