"""Building blocks against their plain definitions, gradients, weights round trips."""
from __future__ import annotations

import pytest
import torch

from mbf.modeling import MBF, VIT_SPECS, VisionTransformerReID, build_model
from mbf.modeling.separator import ForegroundSeparator
from mbf.modeling.vit import Block


def _images(model, batch=4, seed=1):
    gen = torch.Generator().manual_seed(seed)
    h, w = model.backbone.img_size
    cams = torch.arange(batch) % max(model.backbone.num_cameras, 1)
    return torch.randn(batch, 3, h, w, generator=gen), cams


def test_fused_attention_matches_explicit_attention():
    torch.manual_seed(0)
    block = Block(32, 4, qkv_bias=True).eval()
    x = torch.randn(3, 9, 32)
    explicit, cls_attn = block.forward_with_cls_attention(x)
    torch.testing.assert_close(block(x), explicit, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(block.forward_cls_only(x), explicit[:, :1], rtol=1e-5, atol=1e-6)
    assert cls_attn.shape == (3, 8)
    # the CLS row of the attention probabilities, averaged over heads
    q, k, _ = block.attn.qkv_heads(block.norm1(x))
    probs = ((q @ k.transpose(-2, -1)) * block.attn.scale).softmax(-1)
    torch.testing.assert_close(cls_attn, probs[:, :, 0, 1:].mean(1))


@pytest.mark.parametrize("train", [False, True])
def test_part_features_equal_one_full_block_pass_per_part(train):
    """The shared-key/value part branch gives the numbers of K plain block passes."""
    torch.manual_seed(0)
    B, P, D, K = 3, 10, 32, 4
    sep = ForegroundSeparator(D, K, dict(num_heads=4, mlp_ratio=4.0, qkv_bias=True), threshold=0.4).train(train)
    token, patches = torch.randn(B, D), torch.randn(B, P, D)
    masks = torch.rand(B, K, P) > 0.5
    masks[0, 0] = False  # a part with no patch
    masks[1, 1] = True  # a part with every patch
    fast = sep.part_features(token, patches, masks)
    for k in range(K):
        seq = torch.cat((token[:, None], patches * masks[:, k, :, None]), dim=1)
        slow = sep.part_norm(sep.part_block(seq))[:, 0]
        torch.testing.assert_close(fast[:, k], slow, rtol=1e-5, atol=1e-5)


def test_separation_loss_is_mean_abs_cosine_over_background_and_salient():
    torch.manual_seed(0)
    sep = ForegroundSeparator(16, 4, dict(num_heads=2))
    patches, glob = torch.randn(2, 6, 16), torch.randn(2, 16)
    probs = torch.softmax(torch.randn(2, 5, 3, 2) * 3, dim=1)
    salient = torch.tensor([[0, 1], [5, 2]])
    loss = sep.separation_loss(patches, glob, probs, salient)
    values = []
    for b in range(2):
        for p in range(6):
            if probs[b, 0].flatten()[p] > 0.4 or p in salient[b].tolist():
                values.append(torch.nn.functional.cosine_similarity(patches[b, p], glob[b], dim=0).abs())
    torch.testing.assert_close(loss, torch.stack(values).mean())


def test_train_outputs_shapes_and_gradients(tiny_model):
    model = tiny_model().train()
    img, cams = _images(model)
    pid = torch.tensor([0, 0, 1, 1])
    fh, fw = model.grid_size
    P, D, K = fh * fw, model.backbone.embed_dim, model.num_parts
    out_h = model(img, label=pid, cam_label=cams, occluded=False)
    out_o = model(img, label=pid, cam_label=cams, occluded=True)
    assert [s.shape for s in out_h.scores] == [(4, 3)] * (K + 1)
    assert [f.shape for f in out_o.feats] == [(4, D)] * (K + 1)
    assert out_h.patch_probs.shape == (4, K + 1, fh, fw)
    assert out_h.salient_idx.shape == (4, 4) and out_h.salient_idx.dtype == torch.int64  # ceil(0.4 * 8)
    assert out_h.patch_feats.shape == out_o.recovered_patches.shape == (4, P, D)
    assert len(out_o.decoder_scores) == len(out_o.decoder_feats) == K

    # ID/triplet terms of the recovered parts do not reach the decoder (the reference's no_grad)
    model.zero_grad()
    sum(s.sum() for s in out_o.decoder_scores).backward(retain_graph=True)
    assert all(p.grad is None or not p.grad.any() for p in model.decoder.parameters())
    assert model.separator.part_block.mlp.fc1.weight.grad.abs().sum() > 0
    model.zero_grad()
    out_o.recovered_patches.square().mean().backward()
    assert model.decoder.query_embed.grad.abs().sum() > 0


def test_state_dict_has_no_dead_copies(tiny_model):
    model = tiny_model()
    prefixes = {k.split(".")[0] for k in model.state_dict()}
    assert prefixes == {"backbone", "separator", "neck", "part_necks", "decoder", "recovered_necks"}
    assert not any(k.startswith("backbone.fc.") for k in model.state_dict())
    assert tiny_model(**{"MODEL.RECOVERY": False}).decoder is None


def test_decoder_layers_start_as_clones(tiny_model):
    layers = tiny_model().decoder.layers
    assert len(layers) == 2
    for (k, a), b in zip(layers[0].state_dict().items(), layers[1].state_dict().values()):
        assert torch.equal(a, b), k


def test_own_checkpoint_round_trip_through_file(tiny_model, tmp_path):
    model = tiny_model().eval()
    img, cams = _images(model)
    path = tmp_path / "model.pth"
    torch.save({"model": {"module." + k: v for k, v in model.state_dict().items()}}, path)
    other = tiny_model()
    with torch.no_grad():
        for p in other.parameters():
            p.normal_()
    other.load_param(str(path))
    other.eval()
    with torch.no_grad():
        torch.testing.assert_close(other(img, cam_label=cams), model(img, cam_label=cams), rtol=0, atol=0)


def test_eval_descriptor_is_per_image(tiny_model):
    model = tiny_model().eval()
    img, cams = _images(model, batch=6)
    with torch.no_grad():
        whole = model(img, cam_label=cams)
        parts = torch.cat([model(img[:2], cam_label=cams[:2]), model(img[2:], cam_label=cams[2:])])
    assert whole.shape == (6, 9 * 32)
    torch.testing.assert_close(whole, parts, rtol=1e-5, atol=1e-6)


def test_recovery_off_descriptor_and_checkpoint(tiny_model):
    full = tiny_model()
    model = tiny_model(**{"MODEL.RECOVERY": False})
    model.load_param(full.state_dict())  # the recovery branch of a full checkpoint is not needed
    img, cams = _images(model)
    with torch.no_grad():
        assert model.eval()(img, cam_label=cams).shape == (4, 5 * 32)
    out = model.train()(img, cam_label=cams, occluded=True)
    assert out.recovered_patches is None and out.decoder_scores is None


@pytest.mark.parametrize("name", sorted(VIT_SPECS))
def test_every_backbone_type_builds_and_runs(small_cfg, name):
    cfg = small_cfg(**{"MODEL.TRANSFORMER_TYPE": name})
    model = build_model(cfg, 3, 2, 1)
    spec = VIT_SPECS[name]
    attn = model.backbone.blocks[0].attn
    assert (attn.qkv.bias is not None) == spec.qkv_bias
    expected_scale = (32 if spec.scale_by_embed_dim else 16) ** -0.5
    assert attn.scale == pytest.approx(expected_scale)
    assert model.backbone.blocks[0].mlp.fc1.out_features == int(32 * spec.mlp_ratio)
    img, cams = _images(model, batch=2)
    with torch.no_grad():
        assert model.eval()(img, cam_label=cams).shape == (2, 9 * 32)


def test_type_defaults_without_overrides():
    vit_b = VIT_SPECS["vit_base_patch16_224_MBF"]
    assert (vit_b.embed_dim, vit_b.depth, vit_b.num_heads) == (768, 12, 12)
    deit_s = VIT_SPECS["deit_small_patch16_224_TransReID"]
    assert (deit_s.embed_dim, deit_s.depth, deit_s.num_heads) == (384, 12, 6)


def test_camera_and_view_embedding_rows():
    torch.manual_seed(0)
    bb = VisionTransformerReID((32, 16), (16, 16), embed_dim=16, depth=1, num_heads=2, num_cameras=3, num_views=2,
                               salient_block=None)
    assert bb.sie_embed.shape == (6, 1, 16)
    img = torch.randn(2, 3, 32, 16)
    cam, view = torch.tensor([2, 0]), torch.tensor([1, 0])
    tokens = bb.embed(img, cam, view)
    plain = torch.cat((bb.cls_token.expand(2, -1, -1), bb.patch_embed(img)), 1) + bb.pos_embed
    torch.testing.assert_close(tokens - plain, 3.0 * bb.sie_embed[cam * 2 + view].expand(-1, 3, -1))


def test_feature_grid_and_salient_count(small_cfg):
    model = build_model(small_cfg(**{"MODEL.STRIDE_SIZE": [11, 11], "INPUT.SIZE_TRAIN": [128, 64],
                                     "INPUT.SIZE_TEST": [128, 64]}), 2, 2, 1)
    assert isinstance(model, MBF)
    assert model.grid_size == model.feature_grid((128, 64)) == (11, 5)
    assert model.backbone.num_salient == 22  # ceil(0.4 * 55)
    assert model.feature_grid((256, 128)) == (22, 11)
