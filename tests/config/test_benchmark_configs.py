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
