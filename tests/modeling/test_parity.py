"""The MBF network computes the reference's function (golden files mbf_reference_s16/s11.pt and
vit_pretrained_load.pt); tolerances from the fixtures README."""
from __future__ import annotations

import pytest
import torch

from mbf.modeling import build_model, reference_mbf_to_ours

FEATURE_TOL = 1e-4
LOSS_TOL = 1e-5
GOLDEN = ["mbf_reference_s16.pt", "mbf_reference_s11.pt"]


def _build(golden_cfg, g, **overrides):
    c = g["config"]
    model = build_model(golden_cfg(c, **overrides), c["num_classes"], c["camera_num"], 1)
    model.load_param(g["state_dict"])
    return model


def _check_bn_state(model, expected: dict, rel_err):
    """Every running statistic of the reference (reference key names) against ours."""
    ours = model.state_dict()
    converted = reference_mbf_to_ours(expected)
    assert len(converted) == len(expected) > 0
    for key, value in converted.items():
        assert rel_err(ours[key], value) < FEATURE_TOL, key


@pytest.mark.parametrize("name", GOLDEN)
@pytest.mark.parametrize("recovery", [True, False])
@pytest.mark.parametrize("neck_feat", ["after", "before"])
def test_eval_descriptor(golden, golden_cfg, rel_err, name, recovery, neck_feat):
    g = golden(name)
    model = _build(golden_cfg, g, **{"MODEL.RECOVERY": recovery, "TEST.NECK_FEAT": neck_feat}).eval()
    with torch.no_grad():
        desc = model(g["img"], cam_label=g["cam_label"])
    expected = g[f"eval_{neck_feat}_{'occ' if recovery else 'noocc'}"]
    assert desc.shape == expected.shape == (8, model.descriptor_dim)
    assert rel_err(desc, expected) < FEATURE_TOL


def _check_list(actual, expected, rel_err, what):
    assert len(actual) == len(expected), what
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert rel_err(a, e) < FEATURE_TOL, f"{what}[{i}]"


@pytest.mark.parametrize("name", GOLDEN)
def test_train_holistic_then_occluded(golden, golden_cfg, rel_err, name):
    g = golden(name)
    model = _build(golden_cfg, g).train()

    # holistic call: recovery branch off
    ref = g["train_occ0"]
    out = model(g["img"], label=g["target"], cam_label=g["cam_label"], occluded=False)
    _check_list(out.scores, ref[0], rel_err, "scores")
    _check_list(out.feats, ref[1], rel_err, "feats")
    assert rel_err(out.patch_probs, ref[2]) < FEATURE_TOL
    assert torch.equal(out.salient_idx, ref[3][0])
    assert rel_err(out.sepa_loss, ref[4]) < LOSS_TOL
    assert rel_err(out.patch_feats, ref[5]) < FEATURE_TOL
    assert out.recovered_patches is None and out.decoder_scores is None and out.decoder_feats is None
    _check_bn_state(model, g["train_occ0_bn_state_after"], rel_err)

    # occluded call with the recovery branch, from the checkpoint's statistics again
    model.load_param(g["state_dict"])
    ref = g["train_occ1"]
    out = model(g["img_occ"], label=g["target"], cam_label=g["cam_label"], occluded=True)
    _check_list(out.scores, ref[0], rel_err, "scores")
    _check_list(out.feats, ref[1], rel_err, "feats")
    _check_list(out.decoder_scores, ref[2], rel_err, "decoder_scores")
    _check_list(out.decoder_feats, ref[3], rel_err, "decoder_feats")
    assert rel_err(out.patch_probs, ref[4]) < FEATURE_TOL
    assert torch.equal(out.salient_idx, ref[5][0])
    assert rel_err(out.sepa_loss, ref[6]) < LOSS_TOL
    assert rel_err(out.recovered_patches, ref[7]) < FEATURE_TOL
    _check_bn_state(model, g["train_occ1_bn_state_after"], rel_err)


@pytest.mark.parametrize("stride", [16, 11])
def test_imagenet_checkpoint_load(golden, golden_cfg, tmp_path, stride):
    g = golden("vit_pretrained_load.pt")
    state = g["imagenet_state_dict"]
    path = tmp_path / "jx_vit.pth"
    torch.save(state, path)
    c = dict(golden("mbf_reference_s16.pt")["config"], **g["config"], stride=[stride, stride])
    cfg = golden_cfg(c, **{"MODEL.PRETRAIN_CHOICE": "imagenet", "MODEL.PRETRAIN_PATH": str(path)})
    model = build_model(cfg, 2, 3, 1)
    backbone = model.backbone
    assert torch.equal(backbone.pos_embed.detach(), g[f"pos_embed_after_load_s{stride}"])
    assert torch.equal(backbone.patch_embed.proj.weight.detach(), g[f"patch_proj_after_load_s{stride}"])
    last = c["depth"] - 1
    for key, value in model.separator.part_block.state_dict().items():
        assert torch.equal(value, state[f"blocks.{last}.{key}"]), key
    assert torch.equal(model.separator.part_norm.weight.detach(), state["norm.weight"])
