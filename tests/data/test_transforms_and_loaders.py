import numpy as np
import pytest
import torch
import torchvision.transforms as T
from PIL import Image
from torchvision import tv_tensors

from mbf.config import get_cfg
from mbf.data import (ImageSet, build_dataset, build_test_loader, build_test_transform, build_train_loader,
                      build_train_transform, read_image)
from mbf.data.build import use_color_jitter
from mbf.errors import DatasetError


def small_cfg(**input_keys):
    cfg = get_cfg()
    cfg.INPUT.SIZE_TRAIN = [24, 12]
    cfg.INPUT.SIZE_TEST = [24, 12]
    cfg.INPUT.PADDING = 3
    cfg.INPUT.PROB = 0.5
    cfg.SOLVER.IMS_PER_BATCH = 4
    cfg.DATALOADER.NUM_INSTANCE = 2
    cfg.DATALOADER.SAMPLER = "softmax_triplet"
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.TEST.IMS_PER_BATCH = 3
    for key, value in input_keys.items():
        setattr(cfg.INPUT, key, value)
    return cfg


def test_mask_follows_the_image_through_flip_pad_and_crop():
    cfg = small_cfg()
    labels = np.random.default_rng(0).integers(0, 5, (24, 12), dtype=np.uint8)
    img = Image.fromarray(np.repeat(labels[..., None] * 50, 3, axis=2))  # pixel value encodes the label
    transform = build_train_transform(cfg)
    mean, std = cfg.INPUT.PIXEL_MEAN[0], cfg.INPUT.PIXEL_STD[0]
    flips = 0
    for seed in range(12):
        torch.manual_seed(seed)
        out, mask = transform(img, tv_tensors.Mask(torch.from_numpy(labels.astype(np.int64))))
        decoded = torch.round((out[0] * std + mean) * 255 / 50).long()
        assert mask.dtype == torch.int64 and mask.shape == (24, 12)
        assert torch.equal(decoded, mask)
        flips += int(not torch.equal(mask[3:-3, 3:-3], torch.from_numpy(labels.astype(np.int64))[3:-3, 3:-3]))
    assert flips > 0  # the random geometry really moved things


def test_test_transform_matches_the_classic_torchvision_pipeline():
    cfg = small_cfg()
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (50, 21, 3), dtype=np.uint8))
    classic = T.Compose([T.Resize([24, 12]), T.ToTensor(), T.Normalize(cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD)])
    torch.testing.assert_close(build_test_transform(cfg)(img), classic(img), atol=1e-6, rtol=0)


def test_colour_jitter_is_on_for_occluded_reid_only_by_default():
    cfg = small_cfg()
    assert not use_color_jitter(cfg)
    cfg.DATASETS.NAMES = "occ_reid"
    assert use_color_jitter(cfg)
    assert any(type(t).__name__ == "ColorJitter" for t in build_train_transform(cfg).transforms)
    cfg.INPUT.COLOR_JITTER = False
    assert not use_color_jitter(cfg)


def test_read_image_names_truncated_and_missing_files(tmp_path, images):
    path = images.one(tmp_path / "0001_c1_x.jpg", height=64, width=32)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="0001_c1_x.jpg"):
        read_image(path)
    with pytest.raises(DatasetError, match="not found: .*missing.jpg"):
        read_image(tmp_path / "missing.jpg")


def test_mask_of_the_wrong_size_names_the_file(tmp_path, images):
    path = images.one(tmp_path / "0001_c1_x.jpg")
    items = [(str(path), 0, 0, 0)]
    dataset = ImageSet(items, build_train_transform(small_cfg()), mask_loader=lambda p: np.zeros((5, 5), np.uint8))
    with pytest.raises(DatasetError, match="0001_c1_x.jpg"):
        dataset[0]


def test_train_loader_gives_identity_balanced_dict_batches_with_masks(market_root):
    cfg = small_cfg()
    dataset = build_dataset("market1501", str(market_root), verbose=False)
    loader = build_train_loader(cfg, dataset, mask_loader=lambda p: np.ones((24, 12), np.uint8))
    loader.sampler.set_epoch(0)
    batch = next(iter(loader))
    assert batch["img"].shape == (4, 3, 24, 12) and batch["img"].dtype == torch.float32
    assert batch["mask"].shape == (4, 24, 12) and batch["mask"].dtype == torch.int64
    assert batch["pid"].dtype == torch.int64 and len(batch["path"]) == 4
    assert sorted(batch["pid"].tolist()).count(batch["pid"][0].item()) == 2
    assert len(loader) >= 1


def test_test_loader_keeps_query_then_gallery_order(market_root):
    cfg = small_cfg()
    dataset = build_dataset("market1501", str(market_root), verbose=False)
    items = dataset.query + dataset.gallery
    paths = [p for batch in build_test_loader(cfg, items) for p in batch["path"]]
    assert paths == [p for p, *_ in items]


def test_an_unreadable_image_in_a_worker_process_is_reported_in_one_line(market_root):
    from mbf.cli import user_message

    cfg = small_cfg()
    cfg.DATALOADER.NUM_WORKERS = 1
    dataset = build_dataset("market1501", str(market_root), verbose=False)
    broken = dataset.query[0][0]
    with open(broken, "wb") as fh:
        fh.write(b"\xff\xd8 not really a jpeg")
    with pytest.raises(DatasetError) as err:
        list(build_test_loader(cfg, dataset.query))
    message = user_message(err.value)
    assert message.startswith("cannot read image") and broken in message and "\n" not in message


def test_more_workers_than_cpus_are_capped_with_one_log_line(monkeypatch, mbf_log):
    from mbf.data import build_num_workers, loaders

    monkeypatch.setattr(loaders, "available_cpus", lambda: 2)
    monkeypatch.setattr(loaders, "_capped", set())
    cfg = small_cfg()
    cfg.DATALOADER.NUM_WORKERS = 16
    assert build_num_workers(cfg) == 2
    assert build_num_workers(cfg) == 2
    assert mbf_log.text.count("DATALOADER.NUM_WORKERS 16 capped at the 2 CPUs available") == 1
    cfg.DATALOADER.NUM_WORKERS = 1
    assert build_num_workers(cfg) == 1
