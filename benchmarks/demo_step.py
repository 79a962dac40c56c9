"""Seconds per training step of the synthetic demo's MBF, and where the CPU time goes.

    python benchmarks/demo_step.py [--iters 5] [--amp bfloat16] [--profile] [KEY VALUE ...]

The step of ``configs/Synthetic/mbf_tiny.yml`` at its own batch (SOLVER.IMS_PER_BATCH, part
labels delivered with the batch as the demo's label files are): both passes, losses, backward
and the AdamW update, on random images (the cost does not depend on them). ``KEY VALUE``
overrides change the model, e.g. the earlier 192-wide demo model::

    python benchmarks/demo_step.py MODEL.VIT_EMBED_DIM 192 MODEL.VIT_NUM_HEADS 3 MODEL.DECODER_FFN_DIM 384

``--profile`` adds the share of the CPU time spent in matrix products (aten::mm / addmm / bmm)
and their arithmetic rate, from torch.profiler over ``--iters`` more steps.
"""
from __future__ import annotations

import argparse
import platform

import torch
from torch.profiler import ProfilerActivity, profile

from mbf.config import load_config
from mbf.engine.optim import build_optimizer
from mbf.precision import training_precision
from mbf.losses import build_criterion
from mbf.modeling import MBFStep, build_model
from train_step import REPO, make_batch, time_steps  # this folder is on sys.path when run as a script

MATMULS = ("aten::mm", "aten::addmm", "aten::bmm")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--amp", choices=["none", "bfloat16"], default="none", help="CPU autocast of the forward pass")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("opts", nargs="*", help="config overrides KEY VALUE ...")
    args = ap.parse_args()
    cfg = load_config(REPO / "configs/Synthetic/mbf_tiny.yml", ["MODEL.DEVICE", "cpu", *args.opts])
    device, num_classes = torch.device("cpu"), 200
    precision = training_precision(args.amp != "none", "bfloat16", device)
    model = build_model(cfg, num_classes, 4, 1, pretrained=False)
    optimizer = build_optimizer(cfg, model)
    step = MBFStep(model, build_criterion(cfg, num_classes), None, erase_prob=cfg.INPUT.RE_PROB,
                   beta=cfg.MODEL.BETA).train()
    batch = make_batch(cfg, cfg.SOLVER.IMS_PER_BATCH, num_classes, True, device)
    seconds = time_steps(step, optimizer, batch, args.iters, precision.autocast)
    print(f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads), "
          f"width {cfg.MODEL.VIT_EMBED_DIM}, depth {cfg.MODEL.VIT_DEPTH}, batch {cfg.SOLVER.IMS_PER_BATCH}, "
          f"{precision.describe()}: {seconds:.3f} s/step")
    if args.profile:
        with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
            time_steps(step, optimizer, batch, args.iters, precision.autocast)
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        mm = [e for e in events if e.key in MATMULS]
        mm_time = sum(e.self_cpu_time_total for e in mm)  # microseconds
        flops = sum(e.flops for e in mm)
        print(f"matrix products: {100 * mm_time / total:.0f}% of the CPU time, "
              f"{flops / mm_time / 1e3:.0f} GFLOP/s while they run")


if __name__ == "__main__":
    main()
