"""Parsing costs and cached-versus-online labels (numbers for docs/PARSING.md).

1. Post-processing of a batch of parser maps (default 64 at 256x128): mbf.parsing.postprocess
   (two labelling passes over the whole batch) against postprocess_reference (loops over
   images and labels, as the reference), with one thread and with torch's thread count;
   outputs are checked to be identical. Maps: rectangles with speckle (many small components,
   the loops' worst case), smooth random regions, and the parser's output (item 3's parser).
2. Part labels per training step: the seed's HRNet-W48 parser online (network and
   post-processing) against the parse cache (read the stored PNG and move it through the
   training transform with the image, per image, in the data-loader workers).
3. Agreement of cached and online labels at the patch level on synthetic pedestrians. The
   cache parses the original image and its labels follow the image through the training
   transform (resize, flip, pad, crop); online parsing sees the transformed image. The parser
   is the seed's HRNet-W48 with RANDOM weights (BatchNorm statistics measured on the sample
   images, so that its labels vary) unless --model-file gives a trained checkpoint: with
   random weights the figure shows what the geometry does, not what a trained parser does.

    python benchmarks/parsing.py [--batch 64] [--parser-batch 8] [--images 16] [--model-file CKPT]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torchvision import tv_tensors

from mbf.config import load_config
from mbf.data import build_train_transform, read_image
from mbf.synthetic import generate
from mbf.parsing import (NUM_PARTS, FolderMasks, HumanParser, patch_labels, postprocess, postprocess_reference)

REPO = Path(__file__).resolve().parents[1]


def blocky_maps(rng, batch: int, h: int, w: int) -> np.ndarray:
    coarse = rng.integers(0, 10, (batch, h // 16, w // 8))
    maps = np.kron(coarse, np.ones((1, 16, 8), dtype=np.int64))
    speckle = rng.random(maps.shape) < 0.03
    return np.where(speckle, rng.integers(0, 10, maps.shape), maps).astype(np.uint8)


def smooth_maps(rng, batch: int, h: int, w: int) -> np.ndarray:
    noise = torch.from_numpy(rng.standard_normal((batch, 10, h // 16, w // 16))).float()
    return torch.nn.functional.interpolate(noise, size=(h, w), mode="bilinear").argmax(1).to(torch.uint8).numpy()


def best_of(fn, repeat: int = 3):
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def calibrate(parser: HumanParser, images: torch.Tensor) -> HumanParser:
    """BatchNorm statistics of a random parser measured on ``images``, and a random classifier,
    so that its labels vary over a person (a fresh random net predicts one class)."""
    net = parser.net
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    net.train()
    with torch.no_grad():
        net(torch.nn.functional.interpolate(images, size=parser.input_size, mode="bilinear", align_corners=False))
        net.last_layer[-1].weight.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(0))
    parser.eval()
    return parser


def bench_postprocess(args, parser_maps: np.ndarray | None) -> None:
    rng = np.random.default_rng(0)
    kinds = [("rectangles + speckle", blocky_maps(rng, args.batch, args.height, args.width)),
             ("smooth random regions", smooth_maps(rng, args.batch, args.height, args.width))]
    if parser_maps is not None:  # repeated up to the batch size
        reps = -(-args.batch // len(parser_maps))
        kinds.append(("random-weight W48 on synthetic pedestrians", np.concatenate([parser_maps] * reps)[:args.batch]))
    for name, maps in kinds:
        t_one, fast = best_of(lambda: postprocess(maps, workers=1), repeat=5)
        t_threads, _ = best_of(lambda: postprocess(maps), repeat=5)
        t_slow, slow = best_of(lambda: postprocess_reference(maps), repeat=2)
        assert np.array_equal(fast, slow)
        print(f"post-processing {len(maps)} maps {args.height}x{args.width} ({name}): per-image loops "
              f"{t_slow * 1e3:.0f} ms; batched, 1 thread {t_one * 1e3:.0f} ms ({t_slow / t_one:.1f}x), "
              f"{torch.get_num_threads()} threads {t_threads * 1e3:.0f} ms ({t_slow / t_threads:.1f}x); identical")


def bench_step(args, cfg, samples) -> None:
    parser = HumanParser.from_config(cfg, load_weights=False)
    b = args.parser_batch
    imgs = torch.randn(b, 3, args.height, args.width)
    parser(imgs[:1])  # warm-up
    t_net, _ = best_of(lambda: parser.class_maps(imgs), repeat=1)
    maps = parser.class_maps(imgs).numpy()
    t_post, _ = best_of(lambda: postprocess(maps), repeat=3)
    per_image = (t_net + t_post) / b
    print(f"online HRNet-W48 parser, {b} images {args.height}x{args.width}: network {t_net:.2f} s, post-processing "
          f"{t_post * 1e3:.0f} ms -> {per_image:.3f} s/image, {per_image * args.batch:.1f} s per batch of {args.batch}")

    transform = build_train_transform(cfg)
    loader = FolderMasks(samples["mask_dir"])

    def cached_labels():
        for path in samples["paths"]:
            img = read_image(path)
            transform(img, tv_tensors.Mask(torch.from_numpy(loader(path)).long()))

    def image_only():
        for path in samples["paths"]:
            transform(read_image(path))

    n = len(samples["paths"])
    t_with, _ = best_of(cached_labels)
    t_without, _ = best_of(image_only)
    extra = max(t_with - t_without, 0.0) / n
    print(f"parse cache: reading and transforming the stored labels adds {extra * 1e3:.2f} ms/image to the data "
          f"loading ({extra * args.batch:.3f} s per batch of {args.batch}, in the loader workers); "
          f"{per_image / max(extra, 1e-9):.0f}x less than online parsing, and nothing in the training step")


def as_parser_input(cfg, image) -> torch.Tensor:
    """An original image as ``mbf parse`` feeds it: [0,1] floats normalised with INPUT.PIXEL_MEAN / STD."""
    mean = torch.tensor(cfg.INPUT.PIXEL_MEAN).view(3, 1, 1)
    std = torch.tensor(cfg.INPUT.PIXEL_STD).view(3, 1, 1)
    return (torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255 - mean) / std


def bench_agreement(cfg, parser: HumanParser, samples) -> None:
    originals = [read_image(p) for p in samples["paths"]]
    cached = parser.parse_each([as_parser_input(cfg, im) for im in originals])
    for label, overrides in (("training transform (resize, flip 0.5, pad 10, crop)", {}),
                             ("resize only", {"INPUT.PROB": 0.0, "INPUT.PADDING": 0})):
        run_cfg = cfg.clone()
        run_cfg.merge_from_list([x for kv in overrides.items() for x in kv])
        transform = build_train_transform(run_cfg)
        moved, online = [], []
        for i, (original, labels) in enumerate(zip(originals, cached)):
            torch.manual_seed(i)
            img, mask = transform(original, tv_tensors.Mask(torch.from_numpy(labels).long()))
            moved.append(mask.as_subclass(torch.Tensor))
            online.append(parser(img[None])[0])
        moved, online = torch.stack(moved), torch.stack(online)
        pixel = (moved == online).float().mean().item()
        for stride in sorted({int(run_cfg.MODEL.STRIDE_SIZE[0]), 11}, reverse=True):
            a = patch_labels(moved, NUM_PARTS, stride)
            o = patch_labels(online, NUM_PARTS, stride)
            print(f"cached vs online labels, {label}, stride {stride}: {(a == o).float().mean().item():.1%} of "
                  f"patches agree ({a.numel()} patches of {len(originals)} images; {(o > 0).float().mean().item():.0%} "
                  f"of online patch labels are parts; pixels agree {pixel:.1%})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--parser-batch", type=int, default=8, help="images per online-parser timing")
    ap.add_argument("--images", type=int, default=16, help="synthetic images for the cache measurements")
    ap.add_argument("--model-file", default="", help="a trained parser checkpoint for the agreement measurement "
                    "(default: random weights)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["post", "step", "agree"])
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    cfg = load_config(REPO / "configs/OCC_Duke/mbf.yml",
                      ["INPUT.SIZE_TRAIN", f"[{args.height}, {args.width}]", "MODEL.DEVICE", "cpu"])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "syn"
        generate(root, seed=0, num_ids=max(args.images, 2), num_distractor_ids=0, num_cameras=2,
                 train_images_per_id=2, query_images_per_id=1, gallery_images_per_id=2)
        paths = sorted(str(p) for p in (root / "bounding_box_train").glob("*.jpg"))[:args.images]
        samples = {"paths": paths, "mask_dir": str(root / "masks")}
        parser, parser_maps = None, None
        if {"post", "agree"} - set(args.skip):
            # the seed's W48 with random weights whose labels vary over the sample pedestrians
            transform = build_train_transform(cfg)
            torch.manual_seed(0)
            train_images = torch.stack([transform(read_image(p)) for p in paths])
            if args.model_file:
                cfg.HUMAN_PARSING.MODEL_FILE = args.model_file
                parser = HumanParser.from_config(cfg)
            else:
                parser = calibrate(HumanParser.from_config(cfg, load_weights=False), train_images)
            parser_maps = parser.class_maps(train_images).numpy()
        if "post" not in args.skip:
            bench_postprocess(args, parser_maps)
        if "step" not in args.skip:
            bench_step(args, cfg, samples)
        if "agree" not in args.skip:
            bench_agreement(cfg, parser, samples)


if __name__ == "__main__":
    main()
