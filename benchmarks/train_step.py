"""Seconds per MBF training step: online human parser versus stored part labels (parse cache).

The step is the whole training iteration of mbf.modeling.MBFStep plus backward and the
optimiser update, on the tiny synthetic configuration (configs/Synthetic/mbf_tiny.yml). The
online variant parses every batch with the seed's HRNet-W48 parser configuration (random
weights: the cost does not depend on them); the cached variant gets the labels with the
batch, as the data loader delivers them from `mbf parse`'s cache or from label files.

    python benchmarks/train_step.py --batch 16 --iters 3
"""
from __future__ import annotations

import argparse
import contextlib
import platform
import time
from pathlib import Path

import torch

from mbf.config import load_config
from mbf.engine.optim import build_optimizer
from mbf.modeling import MBFStep
from mbf.losses import build_criterion
from mbf.modeling import build_model
from mbf.parsing import NUM_PARTS, HumanParser

REPO = Path(__file__).resolve().parents[1]


def make_batch(cfg, batch: int, num_classes: int, with_mask: bool, device) -> dict:
    h, w = cfg.INPUT.SIZE_TRAIN
    g = torch.Generator().manual_seed(0)
    pids = torch.arange(batch) // cfg.DATALOADER.NUM_INSTANCE % num_classes
    out = {"img": torch.randn(batch, 3, h, w, generator=g), "pid": pids, "camid": torch.zeros(batch, dtype=torch.long),
           "viewid": torch.zeros(batch, dtype=torch.long)}
    if with_mask:
        out["mask"] = torch.randint(0, NUM_PARTS + 1, (batch, h, w), generator=g)
    return {k: v.to(device) for k, v in out.items()}


def time_steps(step: MBFStep, optimizer, batch: dict, iters: int, autocast=contextlib.nullcontext) -> float:
    """Seconds per step (forward under ``autocast()``, backward, update) after one warm-up step."""
    def once():
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = step(batch).loss
        loss.backward()
        optimizer.step()

    once()  # warm-up
    if batch["img"].is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        once()
    if batch["img"].is_cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--parser-config", default=str(REPO / "configs/OCC_Duke/mbf.yml"),
                    help="config whose HUMAN_PARSING block defines the online parser")
    args = ap.parse_args()
    device = torch.device(args.device)
    cfg = load_config(REPO / "configs/Synthetic/mbf_tiny.yml", ["MODEL.DEVICE", device.type])
    parser_cfg = load_config(args.parser_config, [])
    num_classes = 32
    model = build_model(cfg, num_classes, 4, 1).to(device)
    criterion = build_criterion(cfg, num_classes)
    optimizer = build_optimizer(cfg, model)
    parser = HumanParser.from_config(parser_cfg, load_weights=False).to(device)

    def step_with(p):
        return MBFStep(model, criterion, p, erase_prob=cfg.INPUT.RE_PROB, beta=cfg.MODEL.BETA).train()

    cached = time_steps(step_with(None), optimizer, make_batch(cfg, args.batch, num_classes, True, device), args.iters)
    online = time_steps(step_with(parser), optimizer, make_batch(cfg, args.batch, num_classes, False, device),
                        args.iters)
    print(f"device: {device} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads), "
          f"batch {args.batch}, {cfg.INPUT.SIZE_TRAIN[0]}x{cfg.INPUT.SIZE_TRAIN[1]}, parser "
          f"{Path(args.parser_config).parent.name}/{Path(args.parser_config).name} at "
          f"{parser.input_size[0]}x{parser.input_size[1]}")
    print("| labels | s/step | speed-up |")
    print("| --- | --- | --- |")
    print(f"| online parser (HRNet) | {online:.3f} | 1.0x |")
    print(f"| parse cache / label files | {cached:.3f} | {online / cached:.1f}x |")


if __name__ == "__main__":
    main()
