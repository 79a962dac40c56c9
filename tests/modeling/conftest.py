"""Config helpers for the modeling tests: a cfg from a golden file's ``config``, and a tiny cfg."""
from __future__ import annotations

import pytest
import torch

from mbf.config import get_cfg
from mbf.modeling import build_model


def cfg_from_golden(config: dict, **overrides):
    """The yacs config that builds the golden file's architecture through build_model."""
    cfg = get_cfg()
    cfg.merge_from_list([
        "MODEL.NAME", "transformer",
        "MODEL.TRANSFORMER_TYPE", "vit_base_patch16_224_MBF",
        "MODEL.PRETRAIN_CHOICE", "none",
        "MODEL.VIT_EMBED_DIM", config["embed_dim"],
        "MODEL.VIT_DEPTH", config["depth"],
        "MODEL.VIT_NUM_HEADS", config["num_heads"],
        "MODEL.SALIENT_BLOCK", config["salient_block"],
        "MODEL.EFFECTIVE_RADIO", config["keep_rate"],
        "MODEL.STRIDE_SIZE", list(config["stride"]),
        "INPUT.SIZE_TRAIN", list(config["img_size"]),
        "INPUT.SIZE_TEST", list(config["img_size"]),
        "MODEL.NUM_DECODER_LAYER", config["num_decoder_layers"],
        "MODEL.NUM_HEAD", config["decoder_heads"],
        "MODEL.DECODER_FFN_DIM", config["decoder_ffn"],
        "MODEL.QUERY_NUM", config["query_num"],
        "MODEL.SIE_CAMERA", True,
        "MODEL.SIE_COE", config["sie_coe"],
        "MODEL.DROP_PATH", 0.0,
        "MODEL.DROP_OUT", 0.0,
        "MODEL.ATT_DROP_RATE", 0.0,
        "MODEL.DECODER_DROP_RATE", 0.0,
    ])
    for key, value in overrides.items():
        node, leaf = key.rsplit(".", 1)
        sub = cfg
        for part in node.split("."):
            sub = getattr(sub, part)
        setattr(sub, leaf, value)
    return cfg


def tiny_cfg(**overrides):
    """A very small MBF (width 32, depth 3, 64x32 images, 8 patches) for API tests."""
    config = dict(
        embed_dim=32, depth=3, num_heads=2, salient_block=-2, keep_rate=0.4, stride=[16, 16],
        img_size=[64, 32], num_decoder_layers=2, decoder_heads=4, decoder_ffn=64, query_num=4, sie_coe=3.0,
    )
    return cfg_from_golden(config, **overrides)


@pytest.fixture
def tiny_model():
    """``tiny_model(**cfg_overrides)`` -> an MBF built from :func:`tiny_cfg` (3 classes, 2 cameras)."""

    def make(num_classes=3, camera_num=2, view_num=1, **overrides):
        torch.manual_seed(0)
        return build_model(tiny_cfg(**overrides), num_classes, camera_num, view_num)

    return make


@pytest.fixture
def golden_cfg():
    """``golden_cfg(config, **overrides)`` -> cfg for a golden file's ``config`` (see cfg_from_golden)."""
    return cfg_from_golden


@pytest.fixture
def small_cfg():
    """``small_cfg(**overrides)`` -> the tiny cfg of :func:`tiny_cfg`."""
    return tiny_cfg
