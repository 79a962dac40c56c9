"""The CLIP, DINOv2 and LUPerson families against their upstream implementations (built with
random weights here: nothing is downloaded), each weight format read from a file saved in that
format, and the errors for files of another family."""
from __future__ import annotations

import shlex
import subprocess
import sys
import warnings

import pytest
import timm
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from mbf.config import get_cfg
from mbf.errors import CheckpointError, ConfigError
from mbf.state_dicts import load_torch_file
from mbf.modeling import build_model
from mbf.modeling.clip_vit import CLIPVisionReID
from mbf.modeling.dinov2 import DINOv2ReID
from mbf.modeling.luperson import LUPersonViT

TOL = 1e-5
TINY = dict(embed_dim=32, depth=2, num_heads=2, salient_block=None)


def rel(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual - expected).norm() / expected.norm()).item()


def randomise(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every parameter N(0, 0.2) (LayerNorm weights around 1): weights far from any initialisation."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2 + (1.0 if name.endswith(("ln_1.weight", "ln_2.weight",
                    "norm1.weight", "norm2.weight", "norm.weight", "ln_pre.weight", "ln_post.weight")) else 0.0))
    return module.eval()


def images(size, batch=3, seed=1):
    return torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(seed))


def tokens(model, x, cams=None):
    with torch.no_grad():
        return model.eval().forward_features(x, cams)[0]


# ------------------------------------------------------------------ CLIP
def open_clip_visual(size, quick_gelu):
    from open_clip.model import CLIPVisionCfg, _build_vision_tower

    cfg = CLIPVisionCfg(layers=2, width=32, head_width=16, patch_size=16, image_size=size, output_tokens=True)
    return randomise(_build_vision_tower(16, cfg, quick_gelu=quick_gelu))


@pytest.mark.parametrize("quick_gelu", [True, False])
def test_clip_tokens_equal_open_clips_visual_tower(quick_gelu):
    upstream = open_clip_visual((64, 32), quick_gelu)
    ours = CLIPVisionReID((64, 32), quick_gelu=quick_gelu, **TINY)
    ours.load_pretrained({f"visual.{k}": v for k, v in upstream.state_dict().items()})
    x = images((64, 32))
    with torch.no_grad():
        _, patch_tokens = upstream(x)
        upstream.proj = None
        cls, _ = upstream(x)
    mine = tokens(ours, x)
    assert rel(mine[:, 1:], patch_tokens) < TOL and rel(mine[:, 0], cls) < TOL
    with torch.no_grad():
        assert rel(ours.forward_cls(x), cls) < TOL


def test_clip_openai_state_dict_file_loads_with_its_grid_resized_bilinearly(tmp_path):
    upstream = open_clip_visual((64, 64), quick_gelu=True)  # a square 4 x 4 pretraining grid
    state = {f"visual.{k}": v for k, v in upstream.state_dict().items()}
    state.update({"token_embedding.weight": torch.zeros(10, 8), "logit_scale": torch.tensor(4.6),
                  "input_resolution": torch.tensor(64), "transformer.resblocks.0.ln_1.weight": torch.ones(8)})
    torch.save(state, tmp_path / "ViT-B-16.state_dict.pth")
    ours = CLIPVisionReID((80, 48), quick_gelu=True, **TINY)  # a 5 x 3 re-ID grid
    ours.load_pretrained(str(tmp_path / "ViT-B-16.state_dict.pth"))
    grid = upstream.positional_embedding[1:].reshape(1, 4, 4, 32).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(5, 3), mode="bilinear", align_corners=False).permute(0, 2, 3, 1).reshape(15, 32)
    torch.testing.assert_close(ours.pos_embed[0, 1:].detach(), expected)
    assert torch.equal(ours.blocks[1].attn.qkv.weight, upstream.transformer.resblocks[1].attn.in_proj_weight)


def test_open_clip_visual_tower_saved_as_safetensors_loads(tmp_path):
    upstream = open_clip_visual((64, 32), quick_gelu=False)
    save_file({k: v.contiguous() for k, v in upstream.state_dict().items()}, str(tmp_path / "visual.safetensors"))
    ours = CLIPVisionReID((64, 32), quick_gelu=False, **TINY)
    ours.load_pretrained(str(tmp_path / "visual.safetensors"))
    x = images((64, 32))
    with torch.no_grad():
        _, patch_tokens = upstream(x)
    assert rel(tokens(ours, x)[:, 1:], patch_tokens) < TOL


def test_a_torchscript_clip_archive_is_one_error_with_the_command_that_converts_it(tmp_path):
    path = tmp_path / "ViT-B-16.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(torch.nn.Linear(3, 2), torch.zeros(1, 3)), str(path))
    with pytest.raises(CheckpointError) as info:
        CLIPVisionReID((64, 32), **TINY).load_pretrained(str(path))
    message = str(info.value)
    assert "TorchScript archive" in message and f"torch.jit.load('{path}'" in message
    assert "ViT-B-16_state_dict.pth" in message


def test_clip_camera_embedding_goes_to_the_class_token_only_before_pre_norm():
    ours = randomise(CLIPVisionReID((64, 32), num_cameras=3, sie_coe=1.0, **TINY))
    x, cams = images((64, 32), batch=2), torch.tensor([0, 2])
    with torch.no_grad():
        embedded = ours.embed(x, cams)
        raw = torch.cat((ours.cls_token.expand(2, -1, -1) + ours.sie_embed[cams], ours.patch_embed(x)), 1)
        expected = ours.norm_pre(raw + ours.pos_embed)
    torch.testing.assert_close(embedded, expected)


# ------------------------------------------------------------------ DINOv2
def timm_dinov2(registers: int, size=(56, 28)):
    name = "vit_small_patch14_reg4_dinov2" if registers else "vit_small_patch14_dinov2"
    return randomise(timm.create_model(name, pretrained=False, img_size=size, embed_dim=32, depth=2, num_heads=2))


def released_dinov2_layout(model, registers: int, seed=3) -> dict:
    """timm's DINOv2 weights in the layout of the released dinov2_vits14[_reg4]_pretrain.pth."""
    state = dict(model.state_dict())
    state["mask_token"] = torch.zeros(1, 32)
    if registers:
        class_pos = torch.randn(1, 1, 32, generator=torch.Generator().manual_seed(seed))
        state["register_tokens"] = state.pop("reg_token")
        state["cls_token"] = state["cls_token"] - class_pos  # the release adds the class position itself
        state["pos_embed"] = torch.cat((class_pos, state["pos_embed"]), dim=1)
    return state


@pytest.mark.parametrize("registers", [0, 4])
@pytest.mark.parametrize("layout", ["released", "timm"])
def test_dinov2_tokens_equal_timms_dinov2(tmp_path, registers, layout):
    upstream = timm_dinov2(registers)
    state = released_dinov2_layout(upstream, registers) if layout == "released" else upstream.state_dict()
    torch.save(state, tmp_path / "dinov2.pth")
    ours = DINOv2ReID((56, 28), stride=(14, 14), num_registers=registers, **TINY)
    ours.load_pretrained(str(tmp_path / "dinov2.pth"))
    x = images((56, 28))
    with torch.no_grad():
        expected = upstream.forward_features(x)
    mine = tokens(ours, x)
    assert rel(mine[:, 0], expected[:, 0]) < TOL and rel(mine[:, 1:], expected[:, 1 + registers:]) < TOL


@pytest.mark.parametrize("registers, antialias", [(0, False), (4, True)])
def test_dinov2_square_grid_is_resized_bicubically_as_its_release_does(registers, antialias):
    upstream = timm_dinov2(registers, size=(70, 70))  # a 5 x 5 pretraining grid
    state = released_dinov2_layout(upstream, registers)
    ours = DINOv2ReID((56, 28), stride=(14, 14), num_registers=registers, **TINY)
    ours.load_pretrained(state)
    grid = state["pos_embed"][:, 1:].reshape(1, 5, 5, 32).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(4, 2), mode="bicubic", align_corners=False, antialias=antialias)
    torch.testing.assert_close(ours.pos_embed[0, 1:].detach(), expected.permute(0, 2, 3, 1).reshape(8, 32))


def test_dinov2_stride_options():
    def cfg(size, stride):
        c = get_cfg()
        c.merge_from_list(["MODEL.TRANSFORMER_TYPE", "vit_small_patch14_dinov2", "MODEL.PRETRAIN_CHOICE", "none",
                           "MODEL.VIT_EMBED_DIM", 32, "MODEL.VIT_DEPTH", 2, "MODEL.VIT_NUM_HEADS", 2,
                           "MODEL.NUM_HEAD", 4, "INPUT.SIZE_TRAIN", size, "INPUT.SIZE_TEST", size,
                           "MODEL.STRIDE_SIZE", stride])
        return c

    with pytest.raises(ConfigError, match=r"not covered by 14-pixel patches .* use \[252, 126\] or \[266, 140\]"):
        build_model(cfg([256, 128], [14, 14]), 3, 1, 1)
    with pytest.raises(ConfigError, match="larger than the 14-pixel patch"):
        build_model(cfg([252, 126], [16, 16]), 3, 1, 1)
    assert build_model(cfg([252, 126], [14, 14]), 3, 1, 1).grid_size == (18, 9)
    assert build_model(cfg([256, 128], [12, 12]), 3, 1, 1).grid_size == (21, 10)  # overlapping


# ------------------------------------------------------------------ LUPerson (TransReID-SSL)
def test_luperson_tokens_equal_timms_vit():
    upstream = randomise(timm.models.vision_transformer.VisionTransformer(
        img_size=(64, 32), patch_size=16, embed_dim=32, depth=2, num_heads=2, qkv_bias=True, num_classes=0))
    ours = LUPersonViT((64, 32), **TINY)
    ours.load_pretrained(upstream.state_dict())
    x = images((64, 32))
    with torch.no_grad():
        assert rel(tokens(ours, x), upstream.forward_features(x)) < TOL


def test_luperson_released_file_with_its_16_by_8_grid_loads_and_so_does_a_dino_teacher(tmp_path):
    source = randomise(LUPersonViT((256, 128), **TINY))  # the 256 x 128 pretraining: a 16 x 8 grid
    state = {k: v for k, v in source.state_dict().items()}
    state["fc.weight"] = torch.zeros(10, 32)  # TransReID-SSL's classifier, dropped
    torch.save(state, tmp_path / "vit_small_cfs_lup.pth")
    ours = LUPersonViT((64, 32), **TINY)
    ours.load_pretrained(str(tmp_path / "vit_small_cfs_lup.pth"))
    grid = source.pos_embed[:, 1:].reshape(1, 16, 8, 32).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(4, 2), mode="bilinear", align_corners=False).permute(0, 2, 3, 1)
    torch.testing.assert_close(ours.pos_embed[0, 1:].detach(), expected.reshape(8, 32))
    teacher = {"teacher": {**{f"backbone.{k}": v for k, v in source.state_dict().items()},
                           "head.mlp.0.weight": torch.zeros(4, 32)}, "epoch": 100}
    torch.save(teacher, tmp_path / "checkpoint.pth")
    other = LUPersonViT((64, 32), **TINY)
    other.load_pretrained(str(tmp_path / "checkpoint.pth"))
    assert all(torch.equal(v, ours.state_dict()[k]) for k, v in other.state_dict().items())


def test_a_dino_checkpoint_holding_its_arguments_is_one_error_with_the_extraction_to_run(tmp_path):
    import argparse

    path = tmp_path / "checkpoint.pth"
    torch.save({"teacher": {"backbone.cls_token": torch.zeros(1, 1, 32)}, "args": argparse.Namespace(arch="vit")}, path)
    with pytest.raises(CheckpointError) as info:
        LUPersonViT((64, 32), **TINY).load_pretrained(str(path))
    message = str(info.value)
    assert "argparse.Namespace" in message and f"torch.load('{path}'" in message
    assert "checkpoint_teacher_backbone.pth" in message and "weights_only=False" not in message
    # the extraction the message gives works, and stays weights-only: a file needing anything else is refused
    command = shlex.split(message[message.index("python -c"):message.index(" and set MODEL.PRETRAIN_PATH")])
    subprocess.run([sys.executable, *command[1:]], check=True, cwd=tmp_path)
    extracted = load_torch_file(tmp_path / "checkpoint_teacher_backbone.pth")
    assert list(extracted) == ["cls_token"] and torch.equal(extracted["cls_token"], torch.zeros(1, 1, 32))
    torch.save({"teacher": {"backbone.cls_token": torch.zeros(1, 1, 32)}, "args": argparse.Namespace(arch="vit"),
                "payload": print}, path)
    assert subprocess.run([sys.executable, *command[1:]], cwd=tmp_path, capture_output=True).returncode != 0


def test_luperson_conv_stem_keeps_the_released_layout_and_the_16_pixel_patch_grid(tmp_path):
    source = randomise(LUPersonViT((64, 32), conv_stem=True, **TINY))
    stem_keys = {k for k in source.state_dict() if k.startswith("patch_embed.")}
    assert {"patch_embed.conv.0.weight", "patch_embed.conv.1.IN.weight", "patch_embed.conv.1.BN.running_var",
            "patch_embed.conv.3.weight", "patch_embed.conv.4.IN.bias", "patch_embed.conv.6.weight",
            "patch_embed.conv.7.weight", "patch_embed.proj.weight"} <= stem_keys
    assert source.patch_embed.proj.kernel_size == (8, 8)
    torch.save(source.state_dict(), tmp_path / "vit_small_ics_cfs_lup.pth")
    for stride in [(16, 16), (12, 12)]:
        ours = LUPersonViT((64, 32), stride=stride, conv_stem=True, **TINY)
        ours.load_pretrained(str(tmp_path / "vit_small_ics_cfs_lup.pth"))
        with torch.no_grad():
            assert ours.patch_embed(images((64, 32))).shape[1] == ours.num_patches
    with pytest.raises(ConfigError, match=r"STRIDE_SIZE \[11, 11\] must be even"):
        LUPersonViT((64, 32), stride=(11, 11), conv_stem=True, **TINY)


# ------------------------------------------------------------------ files of another family
def _file(tmp_path, kind: str) -> str:
    if kind == "clip":
        state = {f"visual.{k}": v for k, v in open_clip_visual((64, 32), True).state_dict().items()}
    elif kind == "imagenet_vit":
        state = dict(timm.models.vision_transformer.VisionTransformer(
            img_size=(64, 32), embed_dim=32, depth=2, num_heads=2, num_classes=5).state_dict())
    elif kind == "swin":
        state = {"patch_embed.proj.weight": torch.zeros(32, 3, 4, 4),
                 "layers.0.blocks.0.attn.relative_position_bias_table": torch.zeros(169, 2)}
    elif kind == "dinov2_reg":
        state = released_dinov2_layout(timm_dinov2(4), 4)
    else:
        state = LUPersonViT((64, 32), conv_stem=True, **TINY).state_dict()
    path = tmp_path / f"{kind}.pth"
    torch.save(state, path)
    return str(path)


@pytest.mark.parametrize("kind, family, model, key", [
    ("clip", "CLIP", lambda: DINOv2ReID((56, 28), stride=(14, 14), **TINY), "vit_base_patch16_clip_quickgelu"),
    ("imagenet_vit", "ViT", lambda: CLIPVisionReID((64, 32), **TINY), "vit_base_patch16_224_MBF"),
    ("swin", "Swin Transformer", lambda: LUPersonViT((64, 32), **TINY), "no registered MODEL.TRANSFORMER_TYPE"),
    ("ics", "convolution stem", lambda: LUPersonViT((64, 32), **TINY), "vit_small_patch16_ics_luperson"),
    ("dinov2_reg", "register tokens", lambda: DINOv2ReID((56, 28), stride=(14, 14), **TINY),
     "vit_small_patch14_reg4_dinov2"),
])
def test_a_weight_file_of_another_family_is_one_error_naming_the_file_its_family_and_the_key(
        tmp_path, kind, family, model, key):
    path = _file(tmp_path, kind)
    with pytest.raises(CheckpointError) as info:
        model().load_pretrained(path)
    message = str(info.value)
    assert path in message and family in message and key in message


def test_a_size_mismatch_names_the_tensor(tmp_path):
    upstream = timm.create_model("vit_small_patch14_dinov2", pretrained=False, img_size=(56, 28), embed_dim=48,
                                 depth=2, num_heads=2)
    with pytest.raises(CheckpointError, match=r"cls_token: checkpoint \(1, 1, 48\) vs model \(1, 1, 32\)"):
        DINOv2ReID((56, 28), stride=(14, 14), **TINY).load_pretrained(upstream.state_dict())


def test_mbf_reseeds_its_part_block_from_each_family_after_loading_weights():
    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.TRANSFORMER_TYPE", "vit_small_patch14_reg4_dinov2", "MODEL.PRETRAIN_CHOICE", "none",
                         "MODEL.VIT_EMBED_DIM", 32, "MODEL.VIT_DEPTH", 2, "MODEL.VIT_NUM_HEADS", 2, "MODEL.NUM_HEAD", 4,
                         "INPUT.SIZE_TRAIN", [56, 28], "INPUT.SIZE_TEST", [56, 28], "MODEL.STRIDE_SIZE", [14, 14]])
    model = build_model(cfg, 3, 1, 1)
    model.load_imagenet(released_dinov2_layout(timm_dinov2(4), 4))
    last = model.backbone.blocks[-1].state_dict()
    assert all(torch.equal(v, last[k]) for k, v in model.separator.part_block.state_dict().items())
    assert "ls1.gamma" in last  # LayerScale travels into the part branch
    sep, P = model.separator.eval(), model.backbone.num_patches
    token, patches, masks = torch.randn(2, 32), torch.randn(2, P, 32), torch.rand(2, 4, P) > 0.5
    for k in range(4):  # the batched part branch with LayerScale equals one plain pass per part
        seq = torch.cat((token[:, None], patches * masks[:, k, :, None]), dim=1)
        torch.testing.assert_close(sep.part_features(token, patches, masks)[:, k],
                                   sep.part_norm(sep.part_block(seq))[:, 0], rtol=1e-5, atol=1e-5)
