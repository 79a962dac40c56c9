"""The benchmark configs beside the seed's: each loads, names its dataset and writes to its own folder."""
from pathlib import Path

import pytest

from mbf.config import load_config
from mbf.data import DATASETS
from mbf.data.build import use_color_jitter

REPO = Path(__file__).resolve().parents[2]
RECIPES = {  # folder -> (dataset, the seed config whose recipe it follows)
    "Partial_REID": ("partial_reid", "OCC_reid"),
    "Partial_iLIDS": ("partial_ilids", "OCC_reid"),
    "P_DukeMTMC": ("p_dukemtmc", "OCC_Duke"),
    "MSMT17": ("msmt17", "OCC_Duke"),
}
IGNORED = {("DATASETS", "NAMES"), ("OUTPUT_DIR",), ("INPUT", "COLOR_JITTER")}


def flat(node, prefix=()):
    for key, value in node.items():
        if hasattr(value, "items"):
            yield from flat(value, prefix + (key,))
        else:
            yield prefix + (key,), value


@pytest.mark.parametrize("folder", sorted(RECIPES))
@pytest.mark.parametrize("variant", ["mbf.yml", "mbf_stride.yml"])
def test_benchmark_config_follows_its_recipe(folder, variant):
    name, recipe = RECIPES[folder]
    cfg = load_config(REPO / "configs" / folder / variant)
    seed = load_config(REPO / "configs" / recipe / variant)
    assert cfg.DATASETS.NAMES == name and name in DATASETS
    differences = {key for key, value in flat(cfg) if dict(flat(seed))[key] != value}
    assert differences <= IGNORED, differences
    if recipe == "OCC_reid":  # the same Market-trained model as configs/OCC_reid, colour jitter included
        assert cfg.INPUT.COLOR_JITTER == "on" and use_color_jitter(cfg)


def test_every_benchmark_config_has_its_own_output_dir():
    paths = [p for folder in RECIPES for p in sorted((REPO / "configs" / folder).glob("*.yml"))]
    outputs = [load_config(p).OUTPUT_DIR for p in paths]
    assert len(outputs) == 8 and len(set(outputs)) == 8


# ------------------------------------------------------------------ the backbone families' configs
FAMILY_RECIPES = {  # config -> (MODEL.TRANSFORMER_TYPE, input size, stride, optimiser, lr, warm-up epochs, factor, epochs)
    "mbf_clip.yml": ("vit_base_patch16_clip_quickgelu", [256, 128], [16, 16], "Adam", 5e-6, 10, 0.1, 60),
    "mbf_clip_stride.yml": ("vit_base_patch16_clip_quickgelu", [256, 128], [12, 12], "Adam", 5e-6, 10, 0.1, 60),
    "mbf_dinov2.yml": ("vit_base_patch14_dinov2", [252, 126], [14, 14], "SGD", 4e-4, 20, 0.01, 120),
    "mbf_luperson.yml": ("vit_base_patch16_ics_luperson", [384, 128], [16, 16], "SGD", 4e-4, 20, 0.01, 120),
}


@pytest.mark.parametrize("folder, dataset", [("OCC_Duke", "occ_duke"), ("OCC_reid", "occ_reid")])
@pytest.mark.parametrize("variant", sorted(FAMILY_RECIPES))
def test_backbone_family_config_follows_its_published_recipe_and_the_backbones_normalisation(folder, dataset, variant):
    from mbf.modeling import build_backbone

    path = REPO / "configs" / folder / variant
    cfg = load_config(path)
    kind, size, stride, optimiser, lr, warm, factor, epochs = FAMILY_RECIPES[variant]
    s = cfg.SOLVER
    assert (cfg.DATASETS.NAMES, cfg.MODEL.TRANSFORMER_TYPE, cfg.INPUT.SIZE_TRAIN, cfg.INPUT.SIZE_TEST) == (
        dataset, kind, size, size)
    assert (cfg.MODEL.STRIDE_SIZE, s.OPTIMIZER_NAME, s.BASE_LR, s.WARMUP_EPOCHS, s.WARMUP_FACTOR, s.MAX_EPOCHS) == (
        stride, optimiser, lr, warm, factor, epochs)
    seed = load_config(REPO / "configs" / folder / "mbf.yml")  # MBF's own settings stay the seed's
    assert (cfg.MODEL.BETA, cfg.MODEL.EFFECTIVE_RADIO, cfg.MODEL.NUM_DECODER_LAYER) == (
        seed.MODEL.BETA, seed.MODEL.EFFECTIVE_RADIO, seed.MODEL.NUM_DECODER_LAYER)
    assert "github.com/" in path.read_text()  # the recipe's source, in a comment
    tiny = cfg.clone()
    tiny.defrost()
    tiny.merge_from_list(["MODEL.VIT_EMBED_DIM", 32, "MODEL.VIT_DEPTH", 2, "MODEL.VIT_NUM_HEADS", 2])
    backbone = build_backbone(tiny, 8, 1)  # the grid checks pass for this size and stride
    assert list(backbone.pixel_mean) == cfg.INPUT.PIXEL_MEAN and list(backbone.pixel_std) == cfg.INPUT.PIXEL_STD


def test_every_backbone_family_config_has_its_own_output_dir():
    paths = [REPO / "configs" / folder / name for folder in ("OCC_Duke", "OCC_reid") for name in FAMILY_RECIPES]
    outputs = {load_config(p).OUTPUT_DIR for p in paths}
    seeds = {load_config(REPO / "configs" / f / n).OUTPUT_DIR for f in ("OCC_Duke", "OCC_reid")
             for n in ("mbf.yml", "mbf_stride.yml")}
    assert len(outputs) == len(paths) and not outputs & seeds
