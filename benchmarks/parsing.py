"""Parsing costs: batched post-processing versus per-image loops, and online versus cached labels.

1. Post-processing of a batch of parser maps (default 64 at 256x128): mbf.parsing.postprocess
   (one labelling pass over the whole batch) against postprocess_reference (the reference's
   loops over images and labels); outputs are checked to be identical.
2. Part labels for a training batch: the seed's HRNet-W48 parser online (network + post-
   processing, random weights) against reading the stored label PNGs of the parse cache.
3. Agreement of cached and online labels at the patch level: the cache parses the original
   image and the labels follow the image through resize/pad/crop; online parsing sees the
   transformed image. Measured with a random-weight parser on synthetic pedestrians, so it
   shows the effect of the geometry (resize before or after parsing), not of a trained parser.

    python benchmarks/parsing.py --batch 64 --parser-batch 8
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import tv_tensors

from mbf.config import load_config
from mbf.data import build_train_transform
from mbf.parsing import NUM_PARTS, HumanParser, patch_labels, postprocess, postprocess_reference, read_label_png

REPO = Path(__file__).resolve().parents[1]


def blocky_maps(rng, batch: int, h: int, w: int) -> np.ndarray:
    """Parser-like maps: coarse regions of the 10 classes with speckle noise."""
    coarse = rng.integers(0, 10, (batch, h // 16, w // 8))
    maps = np.kron(coarse, np.ones((1, 16, 8), dtype=np.int64))
    speckle = rng.random(maps.shape) < 0.03
    return np.where(speckle, rng.integers(0, 10, maps.shape), maps).astype(np.uint8)


def timed(fn, repeat: int = 3):
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--parser-batch", type=int, default=8, help="images per online-parser timing")
    args = ap.parse_args()
    rng = np.random.default_rng(0)

    maps = blocky_maps(rng, args.batch, args.height, args.width)
    t_fast, fast = timed(lambda: postprocess(maps))
    t_slow, slow = timed(lambda: postprocess_reference(maps), repeat=1)
    assert np.array_equal(fast, slow)
    print(f"post-processing {args.batch} maps of {args.height}x{args.width}: batched {t_fast:.3f} s, per-image "
          f"loops {t_slow:.3f} s ({t_slow / t_fast:.1f}x), identical output")

    cfg = load_config(REPO / "configs/OCC_Duke/mbf.yml", ["INPUT.SIZE_TRAIN", f"[{args.height}, {args.width}]",
                                                        "INPUT.SIZE_TEST", f"[{args.height}, {args.width}]"])
    parser = HumanParser.from_config(cfg, load_weights=False)
    b = args.parser_batch
    imgs = torch.randn(b, 3, args.height, args.width)
    t_online, _ = timed(lambda: parser(imgs), repeat=1)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(b):
            p = Path(tmp) / f"{i}.png"
            Image.fromarray(maps[i] % (NUM_PARTS + 1)).save(p)
            paths.append(p)
        t_cache, _ = timed(lambda: [read_label_png(p) for p in paths])
    print(f"labels for {b} images: online HRNet-W48 parser {t_online:.2f} s ({t_online / b:.3f} s/image), parse cache "
          f"{t_cache:.4f} s ({t_online / t_cache:.0f}x less)")

    # patch-level agreement of cached vs online labels (random parser, geometry only)
    small = HumanParser.from_config(cfg, load_weights=False)
    transform = build_train_transform(cfg)
    mean = torch.tensor(cfg.INPUT.PIXEL_MEAN).view(3, 1, 1)
    std = torch.tensor(cfg.INPUT.PIXEL_STD).view(3, 1, 1)
    from mbf.data import read_image
    from mbf.data.synthetic import generate

    agree, total = 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp) / "syn", seed=0, num_ids=6, num_distractor_ids=0, num_cameras=2, train_images_per_id=2,
                 query_images_per_id=1, gallery_images_per_id=2)
        originals = [read_image(p) for p in sorted((Path(tmp) / "syn" / "bounding_box_train").glob("*.jpg"))[:8]]
    for i, original in enumerate(originals):
        x0 = (torch.from_numpy(np.array(original)).permute(2, 0, 1).float() / 255 - mean) / std
        cached = small(x0[None])[0].numpy().astype(np.uint8)
        torch.manual_seed(i)
        img, mask = transform(original, tv_tensors.Mask(torch.from_numpy(cached).long()))
        online = small(img[None])[0]
        stride = int(cfg.MODEL.STRIDE_SIZE[0])
        a = patch_labels(mask.as_subclass(torch.Tensor)[None], NUM_PARTS, stride)
        o = patch_labels(online[None], NUM_PARTS, stride)
        agree += int((a == o).sum())
        total += a.numel()
    print(f"cached vs online patch labels ({len(originals)} synthetic images, random-weight parser): "
          f"{agree / total:.1%} of patches agree")


if __name__ == "__main__":
    main()
