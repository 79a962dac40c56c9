"""Each architecture reports the layout of its eval descriptor; both share their output type."""
from __future__ import annotations

import pytest
import torch

import mbf.modeling.baseline
import mbf.modeling.mbf
from mbf.modeling import MBFOutput, build_model
from mbf.modeling import outputs
from mbf.parts import PART_NAMES


@pytest.mark.parametrize("recovery,branches", [(True, ("", "recovered ")), (False, ("",))])
def test_mbf_layout_is_the_global_feature_then_each_branchs_parts(tiny_model, recovery, branches):
    model = tiny_model(**{"MODEL.RECOVERY": recovery}).eval()
    layout = model.descriptor_layout()
    names = ["global"] + [prefix + name for prefix in branches for name in PART_NAMES[1:]]
    assert [block[0] for block in layout] == names
    assert [block[1:3] for block in layout] == [(32 * i, 32 * (i + 1)) for i in range(len(names))]
    assert [block[3] for block in layout] == [1.0] + [0.25] * (len(names) - 1)
    assert layout[-1][2] == model.descriptor_dim


def test_the_global_block_of_the_mbf_descriptor_holds_the_global_feature(tiny_model):
    model = tiny_model(**{"TEST.NECK_FEAT": "before"}).eval()
    img, cams = torch.randn(3, 3, 64, 32, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 0])
    (name, start, stop, scale), *_ = model.descriptor_layout()
    with torch.no_grad():
        descriptor = model(img, cam_label=cams)
        tokens, _ = model.backbone.forward_features(img, cams, None, salient=False)
        expected = model.backbone.norm(tokens[:, 0]) * scale
    assert name == "global"
    torch.testing.assert_close(descriptor[:, start:stop], expected, rtol=1e-5, atol=1e-6)


def test_the_baseline_layout_is_its_one_global_feature(small_cfg):
    model = build_model(small_cfg(**{"MODEL.NAME": "transreid"}), 5, 2, 1)
    assert model.descriptor_layout() == (("global", 0, 32, 1.0),)


def test_both_architectures_return_the_output_type_defined_beside_the_heads():
    assert MBFOutput is outputs.MBFOutput
    assert mbf.modeling.mbf.MBFOutput is mbf.modeling.baseline.MBFOutput is outputs.MBFOutput
