"""The backbone contract (mbf.modeling.backbone): every registered backbone, the package's families
and two registered from outside it (a timm ViT that is not the built-in ViT, a CNN), under every
architecture: built, one training step, the eval descriptor (also after a checkpoint round
trip) and an ONNX export, or one
ConfigError naming MODEL.TRANSFORMER_TYPE and the capability it lacks.

Keys that build the very same module at the test's size (the ImageNet ViT's aliases, e.g.
``vit_base_patch16_224_TransReID`` of ``vit_base_patch16_224_MBF``) are shown to be that module
and built under every architecture; the step and the export run once per distinct module."""
from __future__ import annotations

import logging
import math

import pytest
import torch

from mbf.config import get_cfg
from mbf.errors import ConfigError
from mbf.losses import build_criterion
from mbf.modeling import (
    ARCHITECTURES,
    BACKBONES,
    build_backbone,
    build_model,
    build_model_from_checkpoint,
    build_step,
    capabilities_of,
)
from mbf.modeling.backbone import (
    CAMERA_EMBEDDING,
    PRETRAINED_WEIGHTS,
    require_capabilities,
)
from mbf.retrieval.export import export_onnx
from mbf.retrieval.metadata import ModelCard, Preprocessing

from ..extensions.outside_backbones import CNN, TIMM_VIT, TinyCNN

NUM_CLASSES, BATCH = 4, 8


def contract_cfg(name: str, arch: str, sie: bool = False, **extra):
    """A tiny model of MODEL.TRANSFORMER_TYPE ``name`` under MODEL.NAME ``arch`` (width 32, depth 2)."""
    size, stride = ([56, 28], [14, 14]) if "patch14" in name else ([64, 32], [16, 16])
    cfg = get_cfg()
    cfg.merge_from_list([
        "MODEL.NAME", arch, "MODEL.TRANSFORMER_TYPE", name, "MODEL.PRETRAIN_CHOICE", "none",
        "MODEL.VIT_EMBED_DIM", 32, "MODEL.VIT_DEPTH", 2, "MODEL.VIT_NUM_HEADS", 2, "MODEL.DROP_PATH", 0.1,
        "MODEL.STRIDE_SIZE", stride, "INPUT.SIZE_TRAIN", size, "INPUT.SIZE_TEST", size,
        "MODEL.SIE_CAMERA", sie, "MODEL.NUM_HEAD", 4, "MODEL.DECODER_FFN_DIM", 32, "MODEL.NUM_DECODER_LAYER", 1,
        "MODEL.EFFECTIVE_RADIO", 0.5,
    ])
    for key, value in extra.items():
        cfg.merge_from_list([key, value])
    return cfg


def _signature(name: str) -> tuple:
    """What a key builds at the test's size: class, module tree, tensors, attention scales, capabilities."""
    backbone = build_backbone(contract_cfg(name, "transformer"), 2, 1)
    tensors = tuple((k, tuple(v.shape)) for k, v in backbone.state_dict().items())
    scales = tuple(m.scale for m in backbone.modules() if isinstance(getattr(m, "scale", None), float))
    return type(backbone), repr(backbone), tensors, scales, tuple(sorted(capabilities_of(backbone)))


_FIRST: dict[tuple, str] = {}
TWIN = {name: _FIRST.setdefault(_signature(name), name) for name in BACKBONES.names()}
DISTINCT = [name for name, twin in TWIN.items() if twin == name]
ALIASES = [name for name, twin in TWIN.items() if twin != name]


def _batch(size, seed=0):
    gen = torch.Generator().manual_seed(seed)
    h, w = size
    return {"img": torch.randn(BATCH, 3, h, w, generator=gen), "pid": torch.arange(BATCH) // 2,
            "camid": torch.arange(BATCH) % 2, "viewid": torch.zeros(BATCH, dtype=torch.long),
            "mask": torch.randint(0, 5, (BATCH, h, w), generator=gen)}


@pytest.mark.parametrize("arch", ARCHITECTURES.names())
@pytest.mark.parametrize("name", DISTINCT)
def test_each_registered_backbone_trains_one_step_under_every_architecture(name, arch, tmp_path):
    declared = capabilities_of(build_backbone(contract_cfg(name, arch), 2, 1))
    cfg = contract_cfg(name, arch, sie=CAMERA_EMBEDDING in declared)
    missing = [c for c in ARCHITECTURES.get(arch).needs if c not in declared]
    if missing:
        with pytest.raises(ConfigError) as info:
            build_model(cfg, NUM_CLASSES, 2, 1)
        assert f"MODEL.TRANSFORMER_TYPE {name!r}" in str(info.value)
        assert all(c in str(info.value) for c in missing)
        return

    torch.manual_seed(0)
    model = build_model(cfg, NUM_CLASSES, 2, 1)
    step = build_step(cfg, model, build_criterion(cfg, NUM_CLASSES), None).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    batch = _batch(cfg.INPUT.SIZE_TRAIN)
    before = {k: v.detach().clone() for k, v in model.backbone.named_parameters()}
    out = step(batch, torch.Generator().manual_seed(0))
    assert math.isfinite(out.loss.item())
    optimizer.zero_grad()
    out.loss.backward()
    optimizer.step()
    changed = [k for k, v in model.backbone.named_parameters() if not torch.equal(v, before[k])]
    assert changed, "the backbone did not learn"

    model.eval()
    with torch.no_grad():
        descriptor = model(batch["img"], cam_label=batch["camid"])
    assert descriptor.shape == (BATCH, model.descriptor_dim) and torch.isfinite(descriptor).all()
    torch.save(model.state_dict(), tmp_path / "model.pth")  # cameras and identities read back from the checkpoint
    reloaded = build_model_from_checkpoint(cfg, str(tmp_path / "model.pth")).eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(batch["img"], cam_label=batch["camid"]), descriptor)
    card = ModelCard.for_model(model, Preprocessing(tuple(cfg.INPUT.SIZE_TEST), (0.5,) * 3, (0.5,) * 3), True)
    report = export_onnx(model, card, tmp_path / "model.onnx", check_batch=2)
    assert report.relative_error < 1e-4


@pytest.mark.parametrize("arch", ARCHITECTURES.names())
@pytest.mark.parametrize("name", ALIASES)
def test_each_alias_key_builds_the_module_of_the_key_it_repeats_under_every_architecture(name, arch):
    assert _signature(name) == _signature(TWIN[name])
    model = build_model(contract_cfg(name, arch, sie=True), NUM_CLASSES, 2, 1)
    twin = build_model(contract_cfg(TWIN[name], arch, sie=True), NUM_CLASSES, 2, 1)
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in twin.state_dict().items()}


def test_the_contract_test_covers_every_family_and_both_outside_backbones():
    assert {"vit_base_patch16_224_MBF", "vit_base_patch16_clip_quickgelu", "vit_base_patch16_clip",
            "vit_small_patch14_reg4_dinov2", "vit_small_patch16_ics_luperson", TIMM_VIT, CNN} <= set(DISTINCT)
    package = {n for n in BACKBONES.names() if BACKBONES.get(n).__module__.startswith("mbf.")}
    assert package <= set(DISTINCT) | set(ALIASES)


def test_a_cnn_under_mbf_is_one_config_error_naming_the_type_and_every_missing_capability():
    with pytest.raises(ConfigError) as info:
        build_model(contract_cfg(CNN, "transformer"), NUM_CLASSES, 2, 1)
    message = str(info.value)
    assert f"MODEL.TRANSFORMER_TYPE '{CNN}'" in message and "MODEL.NAME 'transformer'" in message
    for capability in ("patch_tokens", "salient_patches", "part_block"):
        assert capability in message


def test_side_information_or_pretrained_weights_asked_of_a_backbone_without_them_is_a_config_error():
    with pytest.raises(ConfigError, match=f"'{CNN}'.*{CAMERA_EMBEDDING}"):
        build_model(contract_cfg(CNN, "transreid", sie=True), NUM_CLASSES, 2, 1)
    cfg = contract_cfg(CNN, "transreid", **{"MODEL.PRETRAIN_CHOICE": "imagenet", "MODEL.PRETRAIN_PATH": "x.pth"})
    with pytest.raises(ConfigError, match=f"'{CNN}'.*{PRETRAINED_WEIGHTS}"):
        build_model(cfg, NUM_CLASSES, 2, 1)


def test_a_declared_capability_whose_attributes_are_missing_is_named():
    class Liar(TinyCNN):
        capabilities = frozenset({"global_feature", "part_block"})

    with pytest.raises(ConfigError, match=r"part_block \(declared, but part_block, norm missing\)"):
        require_capabilities(Liar(), ["part_block"], "liar", "transformer")


def test_mbf_on_a_backbone_of_another_block_type_runs_one_plain_pass_per_part():
    torch.manual_seed(0)
    model = build_model(contract_cfg(TIMM_VIT, "transformer"), NUM_CLASSES, 2, 1).eval()
    sep = model.separator
    token, patches = torch.randn(2, 32), torch.randn(2, model.backbone.num_patches, 32)
    masks = torch.rand(2, 4, model.backbone.num_patches) > 0.5
    fast = sep.part_features(token, patches, masks)
    for k in range(4):
        seq = torch.cat((token[:, None], patches * masks[:, k, :, None]), dim=1)
        torch.testing.assert_close(fast[:, k], sep.part_norm(sep.part_block(seq))[:, 0], rtol=1e-5, atol=1e-6)
    last = model.backbone.vit.blocks[-1].state_dict()
    assert all(torch.equal(v, last[k]) for k, v in sep.part_block.state_dict().items())


@pytest.mark.parametrize("mean, warned", [((0.5, 0.5, 0.5), True), ((0.48145466, 0.4578275, 0.40821073), False)])
def test_input_normalisation_other_than_the_pretraining_one_gives_one_warning(caplog, mean, warned):
    std = (0.5,) * 3 if warned else (0.26862954, 0.26130258, 0.27577711)
    cfg = contract_cfg("vit_base_patch16_clip_quickgelu", "transreid",
                       **{"INPUT.PIXEL_MEAN": list(mean), "INPUT.PIXEL_STD": list(std)})
    with caplog.at_level(logging.WARNING, logger="mbf"):
        build_model(cfg, NUM_CLASSES, 2, 1)
    records = [r for r in caplog.records if "INPUT.PIXEL_MEAN" in r.getMessage()]
    assert len(records) == (1 if warned else 0)
    if warned:
        assert "vit_base_patch16_clip_quickgelu" in records[0].getMessage()
