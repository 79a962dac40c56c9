"""Batch post-processing, mask operations, mask sources and the parse cache."""
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2
from yacs.config import CfgNode as CN

from mbf.config import get_cfg
from mbf.errors import CheckpointError, ConfigError, DatasetError
from mbf.parsing import (HumanParser, ParseCache, build_hrnet, build_mask_loader, drop_covered, keep_salient,
                         load_parser_weights, parse_images, patch_labels, postprocess, postprocess_reference)

TINY_EXTRA = {
    "FINAL_CONV_KERNEL": 1,
    "STAGE2": {"NUM_MODULES": 1, "NUM_BRANCHES": 2, "BLOCK": "BASIC", "NUM_BLOCKS": [1, 1], "NUM_CHANNELS": [4, 8],
               "FUSE_METHOD": "SUM", "DOWNSAMPLE": 2},
    "STAGE3": {"NUM_MODULES": 1, "NUM_BRANCHES": 3, "BLOCK": "BASIC", "NUM_BLOCKS": [1, 1, 1],
               "NUM_CHANNELS": [4, 8, 16], "FUSE_METHOD": "SUM", "DOWNSAMPLE": 2},
    "STAGE4": {"NUM_MODULES": 2, "NUM_BRANCHES": 4, "BLOCK": "BASIC", "NUM_BLOCKS": [1, 1, 1, 1],
               "NUM_CHANNELS": [4, 8, 16, 32], "FUSE_METHOD": "SUM", "DOWNSAMPLE": 1},
}


def blocky_maps(rng, batch, h, w, noise=0.05):
    coarse = rng.integers(0, 10, (batch, h // 16, w // 8))
    maps = np.kron(coarse, np.ones((1, 16, 8), dtype=np.int64))
    speckle = rng.random(maps.shape) < noise
    return np.where(speckle, rng.integers(0, 10, maps.shape), maps).astype(np.uint8)


def test_batch_postprocessing_equals_the_per_image_loops():
    rng = np.random.default_rng(0)
    for _ in range(3):
        maps = blocky_maps(rng, 6, 128, 64)
        assert np.array_equal(postprocess(maps), postprocess_reference(maps))


def test_patch_label_ties_go_to_the_lowest_label():
    labels = torch.zeros(1, 16, 16, dtype=torch.long)
    labels[:, :8] = 3
    labels[:, 8:] = 2
    assert patch_labels(labels, 4, 16).item() == 2


def test_covered_and_non_salient_patches_lose_their_labels():
    labels = torch.arange(1, 9).reshape(1, 2, 4) % 5
    covered = torch.tensor([[True, False, False, False, False, False, False, True]])
    assert drop_covered(labels, covered).flatten().tolist() == [0, 2, 3, 4, 0, 1, 2, 0]
    assert keep_salient(labels, torch.tensor([[1, 2]])).flatten().tolist() == [0, 2, 3, 0, 0, 0, 0, 0]


def seed_parser_cfg(tmp_path):
    cfg = get_cfg()
    cfg.HUMAN_PARSING.EXTRA = CN(TINY_EXTRA, new_allowed=True)
    cfg.HUMAN_PARSING.IMAGE_SIZE = [32, 96]
    torch.manual_seed(0)
    parser = HumanParser.from_config(cfg, load_weights=False)
    path = tmp_path / "parser.pth"
    torch.save({f"model.{k}": v for k, v in parser.net.state_dict().items()} | {"loss.criterion.weight": torch.ones(10)},
               path)
    cfg.HUMAN_PARSING.MODEL_FILE = str(path)
    return cfg


def test_seed_config_parser_block_builds(tmp_path):
    from mbf.config import load_config
    from pathlib import Path

    cfg = load_config(Path(__file__).resolve().parents[2] / "configs/OCC_Duke/mbf.yml", [])
    parser = HumanParser.from_config(cfg, load_weights=False)
    assert parser.input_size == (cfg.HUMAN_PARSING.IMAGE_SIZE[1], cfg.HUMAN_PARSING.IMAGE_SIZE[0])


def test_parser_checkpoint_errors_name_the_problem(tmp_path):
    cfg = seed_parser_cfg(tmp_path)
    HumanParser.from_config(cfg)  # the authors' format loads
    cfg.HUMAN_PARSING.MODEL_FILE = str(tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match="not found"):
        HumanParser.from_config(cfg)
    (tmp_path / "corrupt.pth").write_bytes(b"not a checkpoint")
    cfg.HUMAN_PARSING.MODEL_FILE = str(tmp_path / "corrupt.pth")
    with pytest.raises(CheckpointError, match="cannot read"):
        HumanParser.from_config(cfg)
    other = dict(TINY_EXTRA, STAGE4=dict(TINY_EXTRA["STAGE4"], NUM_CHANNELS=[4, 8, 16, 8]))
    net = build_hrnet(CN(other), 10)
    with pytest.raises(CheckpointError, match="shape mismatches .*transition3"):
        load_parser_weights(net, str(tmp_path / "parser.pth"))
    cfg.HUMAN_PARSING.MODEL_FILE = ""
    with pytest.raises(ConfigError, match="MODEL_FILE"):
        HumanParser.from_config(cfg)


def write_image(path, seed=0, size=(64, 32)):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return str(path)


def informative(parser: HumanParser) -> HumanParser:
    """A random parser whose labels vary over the image (a fresh one predicts one class everywhere)."""
    with torch.no_grad():
        head = parser.net.last_layer[-1]
        head.weight.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(1))
        head.bias.zero_()
    return parser


@pytest.mark.parametrize("geometry", ["flip", "pad", "crop"])
def test_cache_round_trip_equals_transforming_the_parsed_labels(tmp_path, geometry):
    """parse -> store -> load -> transform with the image == transform the labels parsed in memory."""
    from mbf.data.synthetic import generate

    cfg = seed_parser_cfg(tmp_path)
    generate(tmp_path / "data" / "Synthetic_Occluded", seed=0, num_ids=4, num_distractor_ids=0, num_cameras=2,
             height=64, width=32, train_images_per_id=2, query_images_per_id=1, gallery_images_per_id=2)
    cfg.DATASETS.ROOT_DIR = str(tmp_path / "data")
    cfg.HUMAN_PARSING.CACHE_DIR = str(tmp_path / "cache")
    cfg.HUMAN_PARSING.SOURCE = "cache"
    paths = sorted(str(p) for p in (tmp_path / "data" / "Synthetic_Occluded" / "bounding_box_train").glob("*.jpg"))
    parser = informative(HumanParser.from_config(cfg))
    cache = ParseCache.from_config(cfg)
    cache.write_manifest(cfg.HUMAN_PARSING.MODEL_FILE, parser.input_size)
    mean, std = cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD
    parse_images(parser, cache, paths, mean, std, 3, torch.device("cpu"), progress=False)
    loader = build_mask_loader(cfg)
    to_tensor = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])
    geometry_step = {"flip": v2.RandomHorizontalFlip(p=1.0), "pad": v2.Pad(5), "crop": v2.RandomCrop((48, 24))}
    transform = v2.Compose([geometry_step[geometry]])
    seen_labels = set()
    for path in paths:
        img = Image.open(path).convert("RGB")
        direct = parser(to_tensor(img)[None])[0]
        seen_labels |= set(direct.unique().tolist())
        torch.manual_seed(3)
        _, from_cache = transform(img, tv_tensors.Mask(torch.from_numpy(loader(path)).long()))
        torch.manual_seed(3)
        _, from_memory = transform(img, tv_tensors.Mask(direct))
        assert torch.equal(from_cache.as_subclass(torch.Tensor), from_memory.as_subclass(torch.Tensor))
    assert len(seen_labels) > 1  # the labels are not trivially all background


def test_parse_cache_resumes(tmp_path):
    cfg = seed_parser_cfg(tmp_path)
    cfg.DATASETS.ROOT_DIR = str(tmp_path / "data")
    cfg.HUMAN_PARSING.CACHE_DIR = str(tmp_path / "cache")
    cfg.HUMAN_PARSING.SOURCE = "cache"
    paths = [write_image(tmp_path / "data" / "train" / f"000{i}_c1_x.jpg", seed=i) for i in range(3)]
    parser = HumanParser.from_config(cfg)
    cache = ParseCache.from_config(cfg)
    with pytest.raises(DatasetError, match="mbf parse"):
        build_mask_loader(cfg)
    cache.write_manifest(cfg.HUMAN_PARSING.MODEL_FILE, parser.input_size)
    mean, std = cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD
    assert parse_images(parser, cache, paths[:2], mean, std, 2, torch.device("cpu"), progress=False) == 2
    assert parse_images(parser, cache, paths, mean, std, 2, torch.device("cpu"), progress=False) == 1
    assert all(build_mask_loader(cfg)(p).shape == (64, 32) for p in paths)


def test_cache_of_another_parser_says_how_to_rebuild(tmp_path):
    cfg = seed_parser_cfg(tmp_path)
    cfg.HUMAN_PARSING.CACHE_DIR = str(tmp_path / "cache")
    cfg.HUMAN_PARSING.SOURCE = "cache"
    ParseCache(tmp_path / "cache", "0123456789abcdef", tmp_path).write_manifest("old.pth", (96, 32))
    with pytest.raises(DatasetError, match="another parser checkpoint.*mbf parse"):
        build_mask_loader(cfg)


def test_label_files_are_checked_and_named(tmp_path):
    cfg = get_cfg()
    cfg.HUMAN_PARSING.SOURCE = "files"
    cfg.HUMAN_PARSING.MASK_DIR = str(tmp_path / "masks")
    (tmp_path / "masks" / "query").mkdir(parents=True)
    Image.fromarray(np.full((8, 4), 3, np.uint8)).save(tmp_path / "masks" / "query" / "0001_c1_a.png")
    Image.fromarray(np.full((8, 4), 9, np.uint8)).save(tmp_path / "masks" / "query" / "0001_c1_b.png")
    loader = build_mask_loader(cfg)
    assert loader(str(tmp_path / "query" / "0001_c1_a.jpg")).tolist() == [[3] * 4] * 8
    with pytest.raises(DatasetError, match="0001_c1_b.png has label 9"):
        loader(str(tmp_path / "query" / "0001_c1_b.jpg"))
    with pytest.raises(DatasetError, match="not found.*0001_c1_c.png"):
        loader(str(tmp_path / "query" / "0001_c1_c.jpg"))
    cfg.HUMAN_PARSING.SOURCE = "magic"
    with pytest.raises(ConfigError, match="hrnet, files, cache"):
        build_mask_loader(cfg)


def test_mbf_parse_builds_a_cache_that_training_can_read(tmp_path):
    from mbf.cli import main
    from mbf.data.synthetic import generate

    cfg = seed_parser_cfg(tmp_path)
    generate(tmp_path / "data" / "Synthetic_Occluded", seed=0, num_ids=4, num_distractor_ids=0, num_cameras=2,
             height=64, width=32, train_images_per_id=2, query_images_per_id=1, gallery_images_per_id=2)
    extra = tmp_path / "extra.yml"
    extra.write_text("HUMAN_PARSING:\n  EXTRA:\n" + "".join(
        f"    {k}: {v}\n" for k, v in TINY_EXTRA.items()))
    opts = ["DATASETS.NAMES", "synthetic_occ", "DATASETS.ROOT_DIR", str(tmp_path / "data"), "MODEL.DEVICE", "cpu",
            "HUMAN_PARSING.MODEL_FILE", cfg.HUMAN_PARSING.MODEL_FILE, "HUMAN_PARSING.IMAGE_SIZE", "[32, 96]",
            "HUMAN_PARSING.CACHE_DIR", str(tmp_path / "cache"), "HUMAN_PARSING.SOURCE", "cache"]
    assert main(["parse", "--config_file", str(extra), *opts]) == 0
    from mbf.config import load_config
    from mbf.data import build_dataset

    loader = build_mask_loader(load_config(extra, opts))
    for path, *_ in build_dataset("synthetic_occ", str(tmp_path / "data"), verbose=False).train:
        assert loader(path).shape == (64, 32)
