"""End-to-end training on a very small synthetic set: outputs, crash and resume, distributed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from mbf.engine.checkpoint import load_file
from mbf.engine.hooks import Checkpoints
from mbf.engine.build import build_trainer

REPO = Path(__file__).resolve().parents[2]
TINY_CONFIG = str(REPO / "configs" / "Synthetic" / "mbf_tiny.yml")


def train_command(opts: list[str], *extra: str) -> list[str]:
    return [sys.executable, str(REPO / "train.py"), "--config_file", TINY_CONFIG, *extra, *opts]


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_one_epoch_trains_evaluates_and_writes_every_output(tiny_cfg):
    cfg = tiny_cfg(epochs=1)
    result = build_trainer(cfg, config_file=TINY_CONFIG).fit()
    out = Path(cfg.OUTPUT_DIR)
    report = json.loads((out / "results.json").read_text())
    assert set(report) >= {"rank1", "rank5", "rank10", "mAP", "config_file", "weights"} and "config" not in report
    assert 0.0 <= report["mAP"] <= 1.0 and report["rank1"] == float(result.cmc[0])
    for name in ("last.pth", "transformer_1.pth", "training_curve.png", "retrieval.png", "part_masks.png"):
        assert (out / name).is_file(), name
    assert any((out / "tensorboard").iterdir())
    state = load_file(out / "transformer_1.pth")
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


WORKER = textwrap.dedent(
    """
    import os, sys, torch
    from mbf.config import load_config
    from mbf.engine.checkpoint import unwrap
    from mbf.engine.build import build_trainer

    out, config, opts = sys.argv[1], sys.argv[2], sys.argv[3:]
    trainer = build_trainer(load_config(config, opts), config_file=config)
    snapshot = lambda: {k: v.detach().clone() for k, v in unwrap(trainer.model).named_parameters()}
    before = snapshot()
    trainer.train_epoch(1)
    torch.save({"before": before, "after": snapshot()}, os.path.join(out, f"rank{trainer.dist.rank}.pt"))
    """
)


def test_two_gloo_processes_hold_identical_weights_after_training(tiny_opts, tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    opts = tiny_opts(1, "ddp") + ["MODEL.DIST_TRAIN", "True"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(tmp_path), TINY_CONFIG, *opts]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert_same_state(rank0["after"], rank1["after"])
    moved = [k for k in rank0["after"] if not torch.equal(rank0["after"][k], rank0["before"][k])]
    assert len(moved) > len(rank0["after"]) // 2  # training really changed the weights


def test_a_non_finite_loss_stops_training_naming_the_step_and_terms(tiny_cfg):
    import pytest

    from mbf.errors import TrainingError

    cfg = tiny_cfg(epochs=2, output="nan")
    trainer = build_trainer(cfg, config_file=TINY_CONFIG)
    record = trainer.train_epoch(1)
    trainer.hook(Checkpoints).after_epoch(trainer, 1, record)  # what fit() does after an epoch
    good = load_file(Path(cfg.OUTPUT_DIR) / "last.pth")["model"]
    class Poisoned(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            loss, terms = self.inner(*args)
            return loss * float("nan"), terms

    trainer.step.criterion = Poisoned(trainer.step.criterion)
    with pytest.raises(TrainingError, match=r"non-finite loss at epoch 2, iteration 1/\d+.*reid_holistic="):
        trainer.train_epoch(2)
    kept = load_file(Path(cfg.OUTPUT_DIR) / "last.pth")
    assert kept["epoch"] == 1
    assert_same_state(kept["model"], good)


def test_the_global_baseline_trains_with_random_erasing_and_has_no_part_picture(tiny_cfg):
    # the baseline needs no part labels: a missing mask folder must not matter
    cfg = tiny_cfg(epochs=1, extra=["MODEL.NAME", "transreid", "INPUT.RE_PROB", "1.0",
                                    "HUMAN_PARSING.MASK_DIR", "no/such/masks"], output="baseline")
    trainer = build_trainer(cfg, config_file=TINY_CONFIG)
    assert "mask" not in next(iter(trainer.loader))
    seen = []
    trainer.step.model.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    batch = next(iter(trainer.loader))
    trainer.step(batch)
    assert not torch.equal(seen[0], batch["img"])  # the image the model saw was erased
    trainer.fit()
    out = Path(cfg.OUTPUT_DIR)
    assert (out / "results.json").is_file() and (out / "retrieval.png").is_file()
    assert not (out / "part_masks.png").exists()
