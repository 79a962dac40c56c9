"""The TransReID-style global-feature baseline (MODEL.NAME 'transreid')."""
from __future__ import annotations

import torch

from mbf.modeling import MBFOutput, TransReIDBaseline, build_model


def _baseline(small_cfg, **overrides):
    torch.manual_seed(0)
    return build_model(small_cfg(**{"MODEL.NAME": "transreid", **overrides}), 5, 2, 1)


def test_baseline_shapes(small_cfg):
    model = _baseline(small_cfg)
    assert isinstance(model, TransReIDBaseline) and model.descriptor_dim == 32
    img, cams, pid = torch.randn(4, 3, 64, 32), torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 1, 1])
    out = model.train()(img, label=pid, cam_label=cams)
    assert isinstance(out, MBFOutput)
    assert [s.shape for s in out.scores] == [(4, 5)] and [f.shape for f in out.feats] == [(4, 32)]
    assert out.patch_probs is None and out.salient_idx is None and out.sepa_loss is None
    out.scores[0].sum().backward()
    assert model.backbone.patch_embed.proj.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        after = model(img, cam_label=cams)
        model.neck_feat = "before"
        before = model(img, cam_label=cams)
        tokens, _ = model.backbone.forward_features(img, cams)
    assert after.shape == before.shape == (4, 32)
    # the CLS-only last block gives the CLS token of the full forward (feature before the neck)
    torch.testing.assert_close(before, tokens[:, 0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(after, model.neck(tokens[:, 0]), rtol=1e-5, atol=1e-5)


def test_baseline_loads_reference_transreid_checkpoint(small_cfg):
    model = _baseline(small_cfg).eval()
    reference = {}
    for key, value in model.state_dict().items():
        key = key.replace("backbone.", "base.", 1).replace("neck.bn.", "bottleneck.").replace("neck.classifier.", "classifier.")
        reference["module." + key] = value.clone()
    reference["module.base.fc.weight"] = torch.zeros(1000, 32)  # the reference's unused ImageNet head
    reference["module.base.fc.bias"] = torch.zeros(1000)
    other = _baseline(small_cfg)
    with torch.no_grad():
        for p in other.parameters():
            p.normal_()
    other.load_param(reference)
    img, cams = torch.randn(2, 3, 64, 32), torch.tensor([1, 0])
    with torch.no_grad():
        torch.testing.assert_close(other.eval()(img, cam_label=cams), model(img, cam_label=cams), rtol=0, atol=0)
