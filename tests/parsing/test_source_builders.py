"""Where labels and caches live: the config keys translated by the mask-source builders."""
from pathlib import Path

from mbf.config import get_cfg
from mbf.parsing import MASK_SOURCES, build_mask_dir
from mbf.parsing.cache import build_cache_dir


def test_a_relative_mask_dir_lies_under_the_dataset_root_an_absolute_one_stays(tmp_path):
    cfg = get_cfg()
    cfg.DATASETS.ROOT_DIR = str(tmp_path / "data")
    cfg.HUMAN_PARSING.MASK_DIR = "masks"
    assert build_mask_dir(cfg) == tmp_path / "data" / "masks"
    cfg.HUMAN_PARSING.MASK_DIR = str(tmp_path / "elsewhere")
    assert build_mask_dir(cfg) == tmp_path / "elsewhere"


def test_the_parse_cache_defaults_to_the_output_folder(tmp_path):
    cfg = get_cfg()
    cfg.OUTPUT_DIR = str(tmp_path / "run")
    assert build_cache_dir(cfg) == tmp_path / "run" / "parse_cache"
    cfg.HUMAN_PARSING.CACHE_DIR = str(tmp_path / "cache")
    assert build_cache_dir(cfg) == tmp_path / "cache"
    cfg.HUMAN_PARSING.CACHE_DIR, cfg.OUTPUT_DIR = "", ""
    assert build_cache_dir(cfg) == Path("parse_cache")


def test_every_shipped_mask_source_is_a_builder():
    for name in ("hrnet", "files", "cache"):
        assert MASK_SOURCES.get(name).__name__.startswith("build_")
