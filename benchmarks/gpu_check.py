"""The GPU measurements still open, as one prepared script (at most about 8 minutes on one GPU).

    python benchmarks/gpu_check.py --out gpu_check.json --rows gpu_check.md      # on a GPU
    python benchmarks/gpu_check.py --dry-run --out check.json                     # CPU, seconds

It checks, on the synthetic demo set and the real configs' ViT-B:

1. ``train_amp``: training steps under float16 autocast with the gradient scaler (SOLVER.AMP,
   the default on CUDA) and under bfloat16 (SOLVER.AMP_DTYPE bfloat16): finite losses, seconds
   per step. The float16 run trains the tiny demo model used by step 2.
2. ``test_amp``: R1 / mAP of that model with TEST.AMP off, bfloat16 and float16, and the
   difference to float32 (TEST.AMP stays off by default until it is within 0.1 point);
   descriptor throughput of the ViT-B MBF (256x128, batch 64) in float32 and under autocast.
3. ``nccl``: ``torchrun --nproc_per_node 1 train.py ... MODEL.DIST_TRAIN True`` (NCCL and DDP
   on one GPU) for one epoch.
4. ``parser``: seconds per training step with the online HRNet-W48 parser against stored labels.

It writes the JSON (``--out``) and the docs/BENCHMARKS.md rows (``--rows``). ``--dry-run`` runs
the same code paths on the CPU in seconds (tiny data and models, bfloat16 in place of float16,
gloo in place of NCCL); its numbers mean nothing, it only proves the script runs.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import make_batch, time_steps  # noqa: E402  (the benchmark beside this one)

from mbf.config import load_config  # noqa: E402
from mbf.synthetic import DATASET_DIR_NAME, ensure_dataset, generate  # noqa: E402
from mbf.data.build import load_dataset  # noqa: E402
from mbf.engine.optim import build_optimizer  # noqa: E402
from mbf.precision import inference_precision  # noqa: E402
from mbf.engine.run_folder import environment  # noqa: E402
from mbf.modeling import MBFStep  # noqa: E402
from mbf.engine.build import build_evaluation, build_trainer  # noqa: E402
from mbf.losses import build_criterion  # noqa: E402
from mbf.modeling import build_model  # noqa: E402
from mbf.parsing import HumanParser  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "Synthetic" / "mbf_tiny.yml"
VIT_B = REPO / "configs" / "OCC_Duke" / "mbf.yml"

# dry run: 9 identities of 64x32 images, a 2-block 32-wide model (the test suite's sizes)
DRY_SET = dict(num_ids=9, test_fraction=1 / 3, num_distractor_ids=1, num_cameras=2, height=64, width=32,
               train_images_per_id=4, query_images_per_id=1, gallery_images_per_id=2, distractor_images_per_id=1)
DRY_MODEL = ["MODEL.VIT_EMBED_DIM", "32", "MODEL.VIT_DEPTH", "2", "MODEL.VIT_NUM_HEADS", "2",
             "MODEL.DECODER_FFN_DIM", "32", "INPUT.SIZE_TRAIN", "[64, 32]", "INPUT.SIZE_TEST", "[64, 32]",
             "INPUT.PADDING", "2", "DATALOADER.NUM_INSTANCE", "2", "SOLVER.IMS_PER_BATCH", "8",
             "TEST.IMS_PER_BATCH", "16", "DATALOADER.NUM_WORKERS", "0"]


class Check:
    def __init__(self, args):
        self.dry = args.dry_run
        self.device = torch.device("cpu" if self.dry or not torch.cuda.is_available() else "cuda")
        self.work = Path(args.work or tempfile.mkdtemp(prefix="gpu_check_"))
        root = Path(args.root) if args.root else self.work / "datasets"
        if self.dry:
            if not (root / DATASET_DIR_NAME).exists():
                generate(root / DATASET_DIR_NAME, seed=0, **DRY_SET)
        else:
            ensure_dataset(root / DATASET_DIR_NAME, seed=0)
        self.base = ["MODEL.DEVICE", self.device.type, "DATASETS.ROOT_DIR", str(root), "SOLVER.LOG_PERIOD", "1000",
                     "SOLVER.CHECKPOINT_PERIOD", "1000", "TEST.VISUALIZE", "False"]
        if self.dry:
            self.base += DRY_MODEL
        self.epochs = 1 if self.dry else args.epochs
        # float16 autocast and its scaler exist on CUDA only; the dry run takes bfloat16's path twice
        self.half = "bfloat16" if self.device.type == "cpu" else "float16"

    def cfg(self, *opts: str, config: Path = TINY):
        return load_config(config, [*self.base, *opts])

    def train_amp(self) -> tuple[dict, object]:
        out, trained = {}, None
        for dtype in dict.fromkeys((self.half, "bfloat16")):
            epochs = self.epochs if trained is None else 1
            cfg = self.cfg("SOLVER.AMP", "True", "SOLVER.AMP_DTYPE", dtype, "SOLVER.MAX_EPOCHS", str(epochs),
                           "SOLVER.EVAL_PERIOD", "1000", "OUTPUT_DIR", str(self.work / f"train_{dtype}"))
            trainer = build_trainer(cfg, overwrite=True)
            start = time.perf_counter()
            records = [trainer.train_epoch(epoch) for epoch in range(1, epochs + 1)]
            steps = epochs * len(trainer.loader)
            out[dtype] = {"precision": trainer.precision.describe(), "epochs": epochs,
                          "s_per_step": (time.perf_counter() - start) / steps,
                          "final_loss": records[-1]["loss"], "finite": all(r["loss"] == r["loss"] for r in records),
                          "grad_scale": trainer.scaler.get_scale() if trainer.precision.needs_scaler else None}
            trainer.close()  # its folder's lock: the run is not fitted, only stepped
            trained = trained or trainer
        return out, trained

    def test_amp(self, trainer) -> dict:
        settings = [("float32", False, "bfloat16"), ("bfloat16", True, "bfloat16")]
        if self.device.type == "cuda":
            settings.append(("float16", True, "float16"))
        model, out = trainer.model.eval(), {}
        dataset = load_dataset(self.cfg(), verbose=False)
        for name, amp, dtype in settings:
            cfg = self.cfg("TEST.AMP", str(amp), "TEST.AMP_DTYPE", dtype)
            result = build_evaluation(cfg, model, self.device, {cfg.DATASETS.NAMES: dataset}).evaluate_set(
                model, cfg.DATASETS.NAMES)
            out[name] = {"rank1": float(result.cmc[0]), "mAP": float(result.mAP)}
        for name in out:
            out[name]["mAP_minus_float32_points"] = 100 * (out[name]["mAP"] - out["float32"]["mAP"])
        out["throughput"] = self.descriptor_throughput([name for name, _, _ in settings])
        return out

    def descriptor_throughput(self, dtypes: list[str]) -> dict:
        opts = ["MODEL.PRETRAIN_CHOICE", "none"]
        cfg = self.cfg(*opts, config=TINY) if self.dry else load_config(VIT_B, ["MODEL.DEVICE", "cuda", *opts])
        batch, iters = (4, 2) if self.dry else (64, 20)
        model = build_model(cfg, 100, 8, 1, pretrained=False).to(self.device).eval()
        h, w = cfg.INPUT.SIZE_TEST
        img = torch.randn(batch, 3, h, w, device=self.device)
        cam = torch.zeros(batch, dtype=torch.long, device=self.device)
        rates = {}
        for name in dtypes:
            precision = inference_precision(name != "float32", name if name != "float32" else "bfloat16", self.device)
            with torch.no_grad(), precision.autocast():
                model(img, cam_label=cam)  # warm-up
                self.sync()
                start = time.perf_counter()
                for _ in range(iters):
                    model(img, cam_label=cam)
                self.sync()
            rates[name] = batch * iters / (time.perf_counter() - start)
        return {"model": cfg.MODEL.TRANSFORMER_TYPE, "size": [h, w], "batch": batch, "images_per_s": rates,
                "speedup_over_float32": {k: v / rates["float32"] for k, v in rates.items()}}

    def nccl(self) -> dict:
        out = self.work / "torchrun"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
               str(REPO / "train.py"), "--config_file", str(TINY), *self.base, "MODEL.DIST_TRAIN", "True",
               "SOLVER.MAX_EPOCHS", "1", "OUTPUT_DIR", str(out), "--overwrite"]
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"})
        log = done.stdout + done.stderr
        backend = "nccl" if ", nccl)" in log else "gloo" if ", gloo)" in log else None
        return {"returncode": done.returncode, "backend": backend, "seconds": time.perf_counter() - start,
                "results": (out / "results.json").is_file(), "tail": log[-1500:] if done.returncode else ""}

    def parser(self) -> dict:
        parser_cfg = load_config(VIT_B, ["HUMAN_PARSING.IMAGE_SIZE", "[32, 64]"] if self.dry else [])
        cfg = self.cfg()
        num_classes, batch, iters = 32, (4 if self.dry else 32), (1 if self.dry else 5)
        model = build_model(cfg, num_classes, 4, 1, pretrained=False).to(self.device)
        criterion, optimizer = build_criterion(cfg, num_classes), build_optimizer(cfg, model)
        teacher = HumanParser.from_config(parser_cfg, load_weights=False).to(self.device)
        seconds = {}
        for name, parser, with_mask in (("parse_cache", None, True), ("online_parser", teacher, False)):
            step = MBFStep(model, criterion, parser, erase_prob=cfg.INPUT.RE_PROB, beta=cfg.MODEL.BETA).train()
            seconds[name] = time_steps(step, optimizer, make_batch(cfg, batch, num_classes, with_mask, self.device),
                                       iters)
        return {"batch": batch, "s_per_step": seconds, "ratio": seconds["online_parser"] / seconds["parse_cache"]}

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()


def rows(report: dict) -> str:
    """The docs/BENCHMARKS.md rows of one run."""
    env, lines = report["environment"], []
    machine = env["gpus"][0] if env["device"].startswith("cuda") else env["platform"]
    lines.append(f"Machine: {machine}, torch {env['torch']}, CUDA {env['cuda']}"
                 + (" (dry run: the numbers mean nothing)" if report["dry_run"] else ""))
    lines += ["", "| check | result |", "| --- | --- |"]
    for dtype, r in report["train_amp"].items():
        lines.append(f"| training, {r['precision']} | {r['s_per_step']:.3f} s/step, loss {r['final_loss']:.3f}, "
                     f"finite: {r['finite']} |")
    test = report["test_amp"]
    for name in ("float32", "bfloat16", "float16"):
        if name in test:
            r = test[name]
            lines.append(f"| evaluation, TEST.AMP {name} | R1 {100 * r['rank1']:.1f}, mAP {100 * r['mAP']:.2f} "
                         f"({r['mAP_minus_float32_points']:+.2f} points) |")
    tp = test["throughput"]
    for name, rate in tp["images_per_s"].items():
        lines.append(f"| descriptors {tp['model']} {tp['size'][0]}x{tp['size'][1]} batch {tp['batch']}, {name} | "
                     f"{rate:.1f} img/s ({tp['speedup_over_float32'][name]:.2f}x float32) |")
    n = report["nccl"]
    lines.append(f"| torchrun, 1 process, {n['backend']} | exit {n['returncode']}, {n['seconds']:.0f} s, "
                 f"results written: {n['results']} |")
    p = report["parser"]
    lines.append(f"| training step batch {p['batch']}: online parser / parse cache | "
                 f"{p['s_per_step']['online_parser']:.3f} / {p['s_per_step']['parse_cache']:.3f} s "
                 f"({p['ratio']:.1f}x) |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny data and models: proves the script runs")
    ap.add_argument("--out", default="gpu_check.json", help="JSON report")
    ap.add_argument("--rows", default=None, help="also write the docs/BENCHMARKS.md rows here")
    ap.add_argument("--root", default=None, help="DATASETS.ROOT_DIR holding Synthetic_Occluded (default: generated)")
    ap.add_argument("--work", default=None, help="folder for the runs' outputs (default: a temporary one)")
    ap.add_argument("--epochs", type=int, default=15, help="float16 training epochs of the demo model")
    args = ap.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        ap.error("no CUDA device: run on a GPU, or pass --dry-run")
    check = Check(args)
    start = time.perf_counter()
    train, trainer = check.train_amp()
    report = {"dry_run": check.dry, "train_amp": train, "test_amp": check.test_amp(trainer),
              "nccl": check.nccl(), "parser": check.parser()}
    report["seconds"] = time.perf_counter() - start
    report["environment"] = environment(check.device)  # what a run folder records as environment.json
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    table = rows(report)
    if args.rows:
        Path(args.rows).write_text(table)
    print(table)
    print(f"{report['seconds']:.0f} s; report in {args.out}")
    return 0 if report["nccl"]["returncode"] == 0 and all(r["finite"] for r in train.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
