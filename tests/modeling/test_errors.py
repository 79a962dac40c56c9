"""Clear errors for weights that do not fit, unreadable files, bad inputs and bad configs."""
from __future__ import annotations

import pytest
import torch

from mbf.errors import CheckpointError, ConfigError, InputError
from mbf.modeling import build_model


def test_missing_key_is_named(tiny_model):
    model = tiny_model()
    state = model.state_dict()
    del state["separator.part_block.mlp.fc2.bias"]
    with pytest.raises(CheckpointError, match=r"missing keys \(1\): separator\.part_block\.mlp\.fc2\.bias"):
        tiny_model().load_param(state)


def test_unexpected_key_is_named(tiny_model):
    state = tiny_model().state_dict()
    state["backbone.extra_token"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match=r"unexpected keys \(1\): backbone\.extra_token"):
        tiny_model().load_param(state)


def test_shape_mismatch_names_key_and_both_shapes(tiny_model):
    state = tiny_model(num_classes=7).state_dict()
    with pytest.raises(CheckpointError) as info:
        tiny_model(num_classes=3).load_param(state)
    assert "neck.classifier.weight: checkpoint (7, 32) vs model (3, 32)" in str(info.value)


def test_reference_checkpoint_of_other_depth_is_rejected(golden, golden_cfg):
    g = golden("mbf_reference_s16.pt")
    c = dict(g["config"], depth=g["config"]["depth"] - 1, salient_block=-2)
    model = build_model(golden_cfg(c), c["num_classes"], c["camera_num"], 1)
    with pytest.raises(CheckpointError, match=r"unexpected keys .*backbone\.blocks\.5\."):
        model.load_param(g["state_dict"])


def test_missing_and_corrupt_files_name_the_path(tiny_model, tmp_path):
    model = tiny_model()
    missing = tmp_path / "nope.pth"
    with pytest.raises(CheckpointError, match="not found: .*nope.pth"):
        model.load_param(str(missing))
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read model weights file .*corrupt.pth"):
        model.load_param(corrupt)
    truncated = tmp_path / "truncated.pth"
    torch.save(model.state_dict(), truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated.pth"):
        model.load_param(truncated)
    not_tensors = tmp_path / "strings.pth"
    torch.save({"a": "b"}, not_tensors)
    with pytest.raises(CheckpointError, match="entry 'a' is a str"):
        model.load_param(not_tensors)


def test_imagenet_errors(small_cfg, tmp_path, golden):
    with pytest.raises(ConfigError, match="PRETRAIN_PATH is empty"):
        build_model(small_cfg(**{"MODEL.PRETRAIN_CHOICE": "imagenet", "MODEL.PRETRAIN_PATH": ""}), 3, 2, 1)
    with pytest.raises(CheckpointError, match="not found"):
        build_model(small_cfg(**{"MODEL.PRETRAIN_CHOICE": "imagenet",
                                 "MODEL.PRETRAIN_PATH": str(tmp_path / "jx.pth")}), 3, 2, 1)
    # an ImageNet ViT of another width
    state = golden("vit_pretrained_load.pt")["imagenet_state_dict"]
    path = tmp_path / "vit96.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"shape mismatch .*cls_token: checkpoint \(1, 1, 96\) vs model \(1, 1, 32\)"):
        build_model(small_cfg(**{"MODEL.PRETRAIN_CHOICE": "imagenet", "MODEL.PRETRAIN_PATH": str(path)}), 3, 2, 1)


def test_deit_distilled_checkpoint_loads_like_vit(golden, golden_cfg):
    g = golden("vit_pretrained_load.pt")
    state = dict(g["imagenet_state_dict"])
    deit = dict(state)
    deit["dist_token"] = torch.zeros(1, 1, 96)
    deit["pos_embed"] = torch.cat((state["pos_embed"][:, :1], torch.ones(1, 1, 96), state["pos_embed"][:, 1:]), 1)
    deit["head_dist.weight"] = torch.zeros(1000, 96)
    c = dict(golden("mbf_reference_s16.pt")["config"], **g["config"])
    model = build_model(golden_cfg(c), 2, 3, 1)
    model.load_imagenet({"model": deit})
    assert torch.equal(model.backbone.pos_embed.detach(), g["pos_embed_after_load_s16"])


def test_bad_image_size_and_channels(tiny_model):
    model = tiny_model().eval()
    cams = torch.tensor([0, 1])
    with pytest.raises(InputError, match=r"image size 64x64 does not match the model's 64x32"):
        model(torch.zeros(2, 3, 64, 64), cam_label=cams)
    with pytest.raises(InputError, match=r"expected images \[B, 3, H, W\]"):
        model(torch.zeros(2, 1, 64, 32), cam_label=cams)


def test_bad_camera_index(tiny_model):
    model = tiny_model(camera_num=2).eval()
    img = torch.zeros(2, 3, 64, 32)
    with pytest.raises(InputError, match=r"cam_label values must be integers in \[0, 1\].*\[0, 2\]"):
        model(img, cam_label=torch.tensor([0, 2]))
    with pytest.raises(InputError, match="cam_label"):
        model(img, cam_label=torch.tensor([-1, 0]))
    with pytest.raises(InputError, match="cam_label is required"):
        model(img)
    with pytest.raises(InputError, match=r"shape \[2\]"):
        model(img, cam_label=torch.tensor([0]))
    no_sie = tiny_model(**{"MODEL.SIE_CAMERA": False}).eval()
    with torch.no_grad():
        assert no_sie(img).shape == (2, 9 * 32)  # camera labels are not needed without SIE


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"MODEL.TRANSFORMER_TYPE": "vit_huge"}, "MODEL.TRANSFORMER_TYPE 'vit_huge' is not one of"),
        ({"MODEL.VIT_NUM_HEADS": 5}, r"MODEL.VIT_NUM_HEADS \(5\) must divide the embedding width \(32\)"),
        ({"MODEL.NUM_HEAD": 3}, r"MODEL.NUM_HEAD \(3\) must divide"),
        ({"MODEL.SALIENT_BLOCK": 3}, "MODEL.SALIENT_BLOCK 3 is outside a backbone of depth 3"),
        ({"MODEL.EFFECTIVE_RADIO": 0.0}, "EFFECTIVE_RADIO"),
        ({"INPUT.SIZE_TEST": [128, 64]}, "INPUT.SIZE_TEST .* must equal INPUT.SIZE_TRAIN"),
        ({"MODEL.NAME": "resnet50"}, "MODEL.NAME 'resnet50'"),
        ({"MODEL.PRETRAIN_CHOICE": "imagenet21k"}, "MODEL.PRETRAIN_CHOICE"),
        ({"MODEL.NUM_DECODER_LAYER": 0}, "NUM_DECODER_LAYER"),
        ({"TEST.NECK_FEAT": "middle"}, "TEST.NECK_FEAT"),
    ],
)
def test_config_errors(small_cfg, overrides, message):
    with pytest.raises(ConfigError, match=message):
        build_model(small_cfg(**overrides), 3, 2, 1)
