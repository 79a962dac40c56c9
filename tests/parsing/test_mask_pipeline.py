"""Batch post-processing, mask operations, mask sources, the parse cache and bad input."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2
from yacs.config import CfgNode as CN

from mbf.config import get_cfg, load_config
from mbf.data import ImageSet
from mbf.errors import CheckpointError, ConfigError, DatasetError, InputError
from mbf.parsing import (NUM_PARTS, HumanParser, ParseCache, ParserSettings, build_hrnet, build_mask_loader,
                         drop_covered, erase_patches, keep_salient, load_parser_weights, parse_images, patch_labels,
                         postprocess, postprocess_reference)

REPO = Path(__file__).resolve().parents[2]
TINY_EXTRA = {
    "FINAL_CONV_KERNEL": 1,
    "STAGE2": {"NUM_MODULES": 1, "NUM_BRANCHES": 2, "BLOCK": "BASIC", "NUM_BLOCKS": [1, 1], "NUM_CHANNELS": [4, 8],
               "FUSE_METHOD": "SUM", "DOWNSAMPLE": 2},
    "STAGE3": {"NUM_MODULES": 1, "NUM_BRANCHES": 3, "BLOCK": "BASIC", "NUM_BLOCKS": [1, 1, 1],
               "NUM_CHANNELS": [4, 8, 16], "FUSE_METHOD": "SUM", "DOWNSAMPLE": 2},
    "STAGE4": {"NUM_MODULES": 1, "NUM_BRANCHES": 4, "BLOCK": "BASIC", "NUM_BLOCKS": [1, 1, 1, 1],
               "NUM_CHANNELS": [4, 8, 16, 32], "FUSE_METHOD": "SUM", "DOWNSAMPLE": 1},
}


# ---------------------------------------------------------------------------- post-processing
def blocky_maps(rng, batch, h, w, block=(16, 8), noise=0.05):
    """Rectangles of random parser classes with speckle: many components of every size."""
    coarse = rng.integers(0, 10, (batch, h // block[0], w // block[1]))
    maps = np.kron(coarse, np.ones((1, *block), dtype=np.int64))
    speckle = rng.random(maps.shape) < noise
    return np.where(speckle, rng.integers(0, 10, maps.shape), maps).astype(np.uint8)


def blob_maps(rng, batch, h, w):
    """Smooth random regions, closer to a parser's output."""
    noise = torch.from_numpy(rng.standard_normal((batch, 10, h // 8, w // 8))).float()
    return torch.nn.functional.interpolate(noise, size=(h, w), mode="bilinear").argmax(1).to(torch.uint8).numpy()


def test_batch_postprocessing_equals_the_per_image_loops():
    rng = np.random.default_rng(0)
    cases = [blocky_maps(rng, 5, 128, 64, block, noise) for block in ((16, 8), (8, 8), (4, 4), (32, 16))
             for noise in (0.0, 0.02, 0.3)]
    cases += [blob_maps(rng, 6, 96, 48), np.zeros((3, 40, 20), np.uint8), np.full((2, 30, 30), 7, np.uint8)]
    for maps in cases:
        expected = postprocess_reference(maps)
        assert np.array_equal(postprocess(maps), expected)
        assert np.array_equal(postprocess(maps, workers=1), expected)
        assert np.array_equal(postprocess(maps, workers=4), expected)
        assert torch.equal(postprocess(torch.from_numpy(maps)), torch.from_numpy(expected))
        for i in range(len(maps)):  # the batch result does not depend on the other images
            assert np.array_equal(postprocess(maps[i:i + 1])[0], expected[i])


def test_zero_padding_changes_no_label():
    """What lets the cache post-process images of different sizes in one call."""
    rng = np.random.default_rng(1)
    maps = blocky_maps(rng, 4, 64, 32, (8, 8), 0.05)
    padded = np.zeros((4, 80, 45), np.uint8)
    padded[:, :64, :32] = maps
    assert np.array_equal(postprocess(padded)[:, :64, :32], postprocess(maps))


def test_postprocess_rejects_bad_maps():
    with pytest.raises(InputError, match=r"\[B,H,W\]"):
        postprocess(np.zeros((4, 4), np.uint8))
    with pytest.raises(InputError, match="0..9"):
        postprocess(np.full((1, 4, 4), 10, np.uint8))


# ---------------------------------------------------------------------------- mask operations
def test_patch_label_ties_go_to_the_lowest_label():
    labels = torch.zeros(1, 16, 16, dtype=torch.long)
    labels[:, :8] = 3
    labels[:, 8:] = 2
    assert patch_labels(labels, 4, 16).item() == 2
    labels = torch.randint(0, 5, (2, 64, 32))
    assert torch.equal(patch_labels(labels, 4, (11, 11)), patch_labels(labels.to(torch.uint8), 4, 11))
    with pytest.raises(InputError):
        patch_labels(labels[:, :8], 4, 16)


def test_erased_windows_equal_a_direct_count():
    gen = torch.Generator().manual_seed(0)
    h, w = 128, 64
    for stride in (16, 12, 11):
        labels = torch.randint(1, 5, (6, (h - 16) // stride + 1, (w - 16) // stride + 1), generator=gen)
        tops, lefts = torch.randint(0, h - 8, (6,), generator=gen), torch.randint(0, w - 8, (6,), generator=gen)
        rects = torch.stack([tops, lefts, torch.randint(8, 80, (6,), generator=gen),
                             torch.randint(8, 50, (6,), generator=gen)], 1)
        rects[2] = -1
        out = erase_patches(labels, rects, stride)
        for b in range(6):
            pixels = torch.zeros(h, w)
            if rects[b, 0] >= 0:
                t, l, rh, rw = rects[b].tolist()
                pixels[t:t + rh, l:l + rw] = 1
            for i in range(labels.shape[1]):
                for j in range(labels.shape[2]):
                    share = pixels[i * stride:i * stride + 16, j * stride:j * stride + 16].mean()
                    assert out[b, i, j] == (0 if share > 0.7 else labels[b, i, j])


def test_covered_and_non_salient_patches_lose_their_labels():
    labels = torch.arange(1, 9).reshape(1, 2, 4) % 5
    covered = torch.tensor([[True, False, False, False, False, False, False, True]])
    assert drop_covered(labels, covered).flatten().tolist() == [0, 2, 3, 4, 0, 1, 2, 0]
    assert keep_salient(labels, torch.tensor([[1, 2]])).flatten().tolist() == [0, 2, 3, 0, 0, 0, 0, 0]


# ---------------------------------------------------------------------------- parser and checkpoints
def test_seed_config_parser_block_builds():
    extras = {p.parent.name + "/" + p.name: load_config(p, []).HUMAN_PARSING for p in REPO.glob("configs/*/mbf*.yml")
              if "EXTRA" in p.read_text()}
    assert extras, "no seed config with an HRNet block"
    hp = extras["OCC_Duke/mbf.yml"]
    assert hp.EXTRA.STAGE1.NUM_RANCHES == 1  # the seed's spelling loads
    parser = HumanParser.from_config(load_config(REPO / "configs/OCC_Duke/mbf.yml", []), load_weights=False)
    assert parser.input_size == (hp.IMAGE_SIZE[1], hp.IMAGE_SIZE[0])
    assert parser.net.last_layer[-1].out_channels == hp.NUM_CLASSES
    widths = [branch[0].conv1.out_channels for branch in parser.net.stage4[0].branches]
    assert widths == list(hp.EXTRA.STAGE4.NUM_CHANNELS)
    for other in extras.values():
        assert other.EXTRA == hp.EXTRA


def calibrated(parser: HumanParser, symmetric: bool = False) -> HumanParser:
    """A random parser whose labels vary over an image (a fresh one predicts one class
    everywhere): BatchNorm statistics measured on smooth noise, a random classifier. With
    ``symmetric`` every kernel is mirror-symmetric, so with odd widths it is flip-equivariant."""
    gen = torch.Generator().manual_seed(1)
    net = parser.net
    with torch.no_grad():
        if symmetric:
            for m in net.modules():
                if isinstance(m, torch.nn.Conv2d):
                    m.weight.copy_((m.weight + m.weight.flip(-1)) / 2)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None  # cumulative average of the calibration batch
        noise = torch.randn(8, 3, *parser.input_size, generator=gen)
        net.train()
        net(torch.nn.functional.avg_pool2d(noise, 9, 1, 4) * 6)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = 0.1
        net.last_layer[-1].weight.normal_(0.0, 1.0, generator=gen)
    parser.eval()
    return parser


def tiny_cfg(tmp_path, image_size=(32, 96), symmetric=False):
    """Config of a tiny random HRNet saved in the authors' checkpoint format."""
    cfg = get_cfg()
    cfg.HUMAN_PARSING.EXTRA = CN(TINY_EXTRA, new_allowed=True)
    cfg.HUMAN_PARSING.IMAGE_SIZE = list(image_size)
    torch.manual_seed(0)
    parser = calibrated(HumanParser.from_config(cfg, load_weights=False), symmetric)
    path = tmp_path / "parser.pth"
    state = {f"model.{k}": v for k, v in parser.net.state_dict().items()} | {"loss.criterion.weight": torch.ones(10)}
    torch.save(state, path)
    cfg.HUMAN_PARSING.MODEL_FILE = str(path)
    cfg.HUMAN_PARSING.CACHE_DIR = str(tmp_path / "cache")
    cfg.DATASETS.ROOT_DIR = str(tmp_path / "data")
    return cfg


def test_parser_checkpoint_errors_name_the_problem(tmp_path):
    cfg = tiny_cfg(tmp_path)
    good = HumanParser.from_config(cfg)  # the authors' format loads, 'loss.*' ignored
    state = torch.load(cfg.HUMAN_PARSING.MODEL_FILE, weights_only=True)
    plain = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    net = build_hrnet(cfg.HUMAN_PARSING.EXTRA, 10)
    load_parser_weights(net, {f"module.{k}": v for k, v in plain.items() if "num_batches_tracked" not in k})
    theirs = good.net.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in net.state_dict().items() if "num_batches_tracked" not in k)

    cfg.HUMAN_PARSING.MODEL_FILE = str(tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match="not found.*missing.pth"):
        HumanParser.from_config(cfg)
    (tmp_path / "corrupt.pth").write_bytes(b"not a checkpoint")
    cfg.HUMAN_PARSING.MODEL_FILE = str(tmp_path / "corrupt.pth")
    with pytest.raises(CheckpointError, match="cannot read parser checkpoint .*corrupt.pth"):
        HumanParser.from_config(cfg)
    other = build_hrnet(CN(dict(TINY_EXTRA, STAGE4=dict(TINY_EXTRA["STAGE4"], NUM_CHANNELS=[4, 8, 16, 8]))), 10)
    with pytest.raises(CheckpointError, match=r"shape mismatch \(\d+\): .*transition3\.3\.0\.0\.weight"):
        load_parser_weights(other, state)
    deeper = build_hrnet(CN(dict(TINY_EXTRA, STAGE4=dict(TINY_EXTRA["STAGE4"], NUM_MODULES=2))), 10)
    with pytest.raises(CheckpointError, match=r"missing keys \(\d+\): stage4\.1\."):
        load_parser_weights(deeper, state)
    cfg.HUMAN_PARSING.MODEL_FILE = ""
    with pytest.raises(ConfigError, match="MODEL_FILE"):
        HumanParser.from_config(cfg)
    cfg.HUMAN_PARSING.EXTRA = CN(new_allowed=True)
    with pytest.raises(ConfigError, match="STAGE2, STAGE3, STAGE4"):
        HumanParser.from_config(cfg, load_weights=False)
    with pytest.raises(InputError):
        good(torch.zeros(3, 64, 32))


def test_images_of_different_sizes_parse_as_alone(tmp_path):
    parser = HumanParser.from_config(tiny_cfg(tmp_path))
    gen = torch.Generator().manual_seed(2)
    images = [torch.nn.functional.avg_pool2d(torch.randn(1, 3, h, w, generator=gen), 5, 1, 2)[0] * 4
              for h, w in ((64, 32), (50, 41), (80, 30))]
    for together, image in zip(parser.parse_each(images), images):
        assert np.array_equal(together, parser(image[None])[0].numpy())
    assert len(np.unique(np.concatenate([x.ravel() for x in parser.parse_each(images)]))) > 1


# ---------------------------------------------------------------------------- parse cache
def synthetic_train(tmp_path, height=64, width=32):
    from mbf.synthetic import generate

    root = tmp_path / "data" / "Synthetic_Occluded"
    generate(root, seed=0, num_ids=4, num_distractor_ids=0, num_cameras=2, height=height, width=width,
             train_images_per_id=2, query_images_per_id=1, gallery_images_per_id=2)
    return sorted(str(p) for p in (root / "bounding_box_train").glob("*.jpg"))


def build_cache(cfg, paths, batch=3):
    cfg.HUMAN_PARSING.SOURCE = "cache"
    parser = HumanParser.from_config(cfg)
    cache = ParseCache.from_config(cfg)
    cache.write_manifest()
    parse_images(parser, cache, paths, cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD, batch, torch.device("cpu"),
                 progress=False)
    return parser, build_mask_loader(cfg)


def normalise(cfg):
    return v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
                       v2.Normalize(cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD)])


def plain(x):
    return x.as_subclass(torch.Tensor)


@pytest.mark.parametrize("geometry", ["flip", "pad", "crop"])
def test_cache_round_trip_equals_transforming_the_parsed_labels(tmp_path, geometry):
    """parse -> store -> load -> transform with the image == the same transform of the labels
    parsed in memory (the PNG round trip and the Mask transforms lose nothing)."""
    cfg = tiny_cfg(tmp_path)
    paths = synthetic_train(tmp_path)
    parser, loader = build_cache(cfg, paths)
    step = {"flip": v2.RandomHorizontalFlip(p=1.0), "pad": v2.Pad(5), "crop": v2.RandomCrop((48, 24))}[geometry]
    seen = set()
    for path in paths:
        img = Image.open(path).convert("RGB")
        direct = parser(normalise(cfg)(img)[None])[0]
        seen |= set(direct.unique().tolist())
        torch.manual_seed(3)
        img_t, from_cache = step(img, tv_tensors.Mask(torch.from_numpy(loader(path)).long()))
        torch.manual_seed(3)
        img_t2, from_memory = step(img, tv_tensors.Mask(direct))
        assert np.array_equal(np.asarray(img_t), np.asarray(img_t2))
        assert torch.equal(plain(from_cache), plain(from_memory))
    assert len(seen) > 2  # the labels are not trivially one class


def test_cached_labels_flipped_equal_parsing_the_flipped_image(tmp_path):
    """Where parsing commutes with the transform, the cache gives the online labels exactly:
    a mirror-symmetric parser with odd widths at every level commutes with a horizontal flip.
    (Pad and crop change the scale at which the parser sees the person, see docs/PARSING.md.)"""
    cfg = tiny_cfg(tmp_path, image_size=(33, 97), symmetric=True)
    paths = synthetic_train(tmp_path)
    parser, loader = build_cache(cfg, paths)
    flip = v2.RandomHorizontalFlip(p=1.0)
    seen = set()
    for path in paths:
        img_t, mask_t = flip(Image.open(path).convert("RGB"), tv_tensors.Mask(torch.from_numpy(loader(path)).long()))
        online = parser(normalise(cfg)(img_t)[None])[0]
        seen |= set(online.unique().tolist())
        assert torch.equal(plain(mask_t), online)
    assert len(seen) > 2


def test_parse_cache_resumes(tmp_path):
    cfg = tiny_cfg(tmp_path)
    paths = synthetic_train(tmp_path)
    cfg.HUMAN_PARSING.SOURCE = "cache"
    parser = HumanParser.from_config(cfg)
    cache = ParseCache.from_config(cfg)
    with pytest.raises(DatasetError, match="no parse cache .*mbf parse"):
        build_mask_loader(cfg)
    cache.write_manifest()
    mean, std = cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD
    assert parse_images(parser, cache, paths[:3], mean, std, 2, torch.device("cpu"), progress=False) == 3
    with pytest.raises(DatasetError, match="no labels for .*again to complete it"):
        build_mask_loader(cfg)(paths[-1])
    assert parse_images(parser, cache, paths, mean, std, 2, torch.device("cpu"), progress=False) == len(paths) - 3
    loader = build_mask_loader(cfg)
    assert all(loader(p).shape == (64, 32) for p in paths)


def test_cache_of_another_parser_says_how_to_rebuild(tmp_path):
    cfg = tiny_cfg(tmp_path)
    cfg.HUMAN_PARSING.SOURCE = "cache"
    settings = ParserSettings("0123456789abcdef", (96, 32), tuple(cfg.INPUT.PIXEL_MEAN), tuple(cfg.INPUT.PIXEL_STD))
    ParseCache(tmp_path / "cache", settings, tmp_path, "old.pth").write_manifest()
    with pytest.raises(DatasetError, match=r"another parser checkpoint.*old\.pth.*mbf parse --config_file"):
        build_mask_loader(cfg)
    # same checkpoint, other normalisation: also refused
    ParseCache.from_config(cfg).write_manifest()
    assert build_mask_loader(cfg) is not None
    cfg.INPUT.PIXEL_MEAN = [0.0, 0.0, 0.0]
    with pytest.raises(DatasetError, match="this parser checkpoint but other settings.*mbf parse"):
        build_mask_loader(cfg)


# ---------------------------------------------------------------------------- label files
def test_label_files_are_checked_and_named(tmp_path):
    cfg = get_cfg()
    cfg.HUMAN_PARSING.SOURCE = "files"
    cfg.HUMAN_PARSING.MASK_DIR = str(tmp_path / "masks")
    masks = tmp_path / "masks" / "query"
    masks.mkdir(parents=True)
    (tmp_path / "query").mkdir()
    for name, labels in (("a", np.full((8, 4), 3)), ("b", np.full((8, 4), 9)), ("d", np.zeros((6, 4))),
                         ("e", np.zeros((8, 4, 3)))):
        Image.fromarray(labels.astype(np.uint8)).save(masks / f"0001_c1_{name}.png")
        Image.fromarray(np.zeros((8, 4, 3), np.uint8)).save(tmp_path / "query" / f"0001_c1_{name}.jpg")
    (masks / "0001_c1_f.png").write_bytes(b"broken")
    loader = build_mask_loader(cfg)
    image = str(tmp_path / "query" / "0001_c1_{}.jpg")
    assert loader(image.format("a")).tolist() == [[3] * 4] * 8
    with pytest.raises(DatasetError, match="0001_c1_b.png has label 9"):
        loader(image.format("b"))
    with pytest.raises(DatasetError, match="not found.*0001_c1_c.png"):
        loader(image.format("c"))
    # the size is checked where image and labels meet: the dataset, naming both files
    assert loader(image.format("d")).shape == (6, 4)
    with pytest.raises(DatasetError, match=r"0001_c1_d.png\) of .*0001_c1_d.jpg is 4x6 .*the image is 4x8"):
        ImageSet([(image.format("d"), 1, 1, 0)], transform=None, mask_loader=loader)[0]
    with pytest.raises(DatasetError, match="0001_c1_e.png must be a single-channel"):
        loader(image.format("e"))
    with pytest.raises(DatasetError, match="cannot read part-label mask .*0001_c1_f.png"):
        loader(image.format("f"))
    cfg.HUMAN_PARSING.SOURCE = "magic"
    with pytest.raises(ConfigError, match="hrnet, files, cache"):
        build_mask_loader(cfg)
    cfg.HUMAN_PARSING.SOURCE = "hrnet"
    assert build_mask_loader(cfg) is None


def test_synthetic_ground_truth_reads_as_label_files(tmp_path):
    paths = synthetic_train(tmp_path)
    cfg = get_cfg()
    cfg.HUMAN_PARSING.SOURCE = "files"
    cfg.HUMAN_PARSING.MASK_DIR = str(tmp_path / "data" / "Synthetic_Occluded" / "masks")
    loader = build_mask_loader(cfg)
    labels = [loader(p) for p in paths]
    assert all(lab.shape == (64, 32) and lab.max() <= NUM_PARTS for lab in labels)
    assert set(np.unique(np.concatenate([lab.ravel() for lab in labels]))) > {0, 1}


def test_mbf_parse_builds_a_cache_that_training_can_read(tmp_path):
    from mbf.cli import main
    from mbf.data import build_dataset

    cfg = tiny_cfg(tmp_path)
    synthetic_train(tmp_path)
    extra = tmp_path / "extra.yml"
    extra.write_text("HUMAN_PARSING:\n  EXTRA:\n" + "".join(f"    {k}: {v}\n" for k, v in TINY_EXTRA.items()))
    opts = ["DATASETS.NAMES", "synthetic_occ", "DATASETS.ROOT_DIR", cfg.DATASETS.ROOT_DIR, "MODEL.DEVICE", "cpu",
            "DATALOADER.NUM_WORKERS", "0", "HUMAN_PARSING.MODEL_FILE", cfg.HUMAN_PARSING.MODEL_FILE,
            "HUMAN_PARSING.IMAGE_SIZE", "[32, 96]", "HUMAN_PARSING.CACHE_DIR", cfg.HUMAN_PARSING.CACHE_DIR,
            "HUMAN_PARSING.SOURCE", "cache"]
    assert main(["parse", "--config_file", str(extra), *opts]) == 0
    loader = build_mask_loader(load_config(extra, opts))
    train = build_dataset("synthetic_occ", cfg.DATASETS.ROOT_DIR, verbose=False).train
    assert all(loader(path).shape == (64, 32) for path, *_ in train)
    assert main(["parse", "--config_file", str(extra), *opts]) == 0  # resumes: nothing left to do


def test_the_parser_sees_its_own_normalisation_whatever_the_backbone_uses(tmp_path):
    """A CLIP-normalised batch gives the parser the same labels as the reference's 0.5 / 0.5 batch
    when HUMAN_PARSING.PIXEL_MEAN / PIXEL_STD name the parser's normalisation; the cache key follows it."""
    from mbf.parsing.cache import ParserSettings

    clip = ([0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711])
    cfg = tiny_cfg(tmp_path)
    reference = HumanParser.from_config(cfg)
    assert reference.convert is None  # the default: the images' own normalisation, as the reference
    cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD = clip
    cfg.HUMAN_PARSING.PIXEL_MEAN, cfg.HUMAN_PARSING.PIXEL_STD = [0.5] * 3, [0.5] * 3
    converted = HumanParser.from_config(cfg)
    raw = torch.rand(2, 3, 96, 32, generator=torch.Generator().manual_seed(3))
    as_reference = (raw - 0.5) / 0.5
    as_clip = (raw - torch.tensor(clip[0]).view(1, 3, 1, 1)) / torch.tensor(clip[1]).view(1, 3, 1, 1)
    expected = reference(as_reference)
    # the conversion is exact up to rounding: labels agree but for ties at most
    assert (converted(as_clip) == expected).float().mean() > 0.995
    assert (reference(as_clip) == expected).float().mean() < 0.9  # without it the parser would see other images
    assert ParserSettings.from_config(cfg).pixel_mean == (0.5, 0.5, 0.5)
