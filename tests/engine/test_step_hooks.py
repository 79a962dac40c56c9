"""The loop is open at every step: hooks see the batch, the gradients before the update and the
updated weights; gradient clipping and a moving average of the weights are two such hooks."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mbf.engine.build import build_trainer
from mbf.engine.checkpoint import load_file
from mbf.engine.hooks import EMA, GradClip, Hook

from .conftest import interrupt_in_epoch


class Recorder(Hook):
    """What the per-step hook points saw."""

    def __init__(self):
        self.calls, self.grad_norms, self.weights = [], [], []

    def before_step(self, trainer, batch):
        self.calls.append("before_step")
        assert batch["img"].device == trainer.device

    def before_update(self, trainer, out):
        self.calls.append("before_update")
        grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
        self.grad_norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))

    def after_step(self, trainer, out):
        self.calls.append("after_step")
        self.weights.append({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})


def fitted(cfg, *recorders: Hook):
    trainer = build_trainer(cfg)
    trainer.hooks.extend(recorders)
    trainer.fit()
    return trainer


def test_step_hooks_are_called_around_every_update_in_order(tiny_cfg):
    recorder = Recorder()
    trainer = fitted(tiny_cfg(epochs=1), recorder)
    steps = len(trainer.loader)
    assert recorder.calls == ["before_step", "before_update", "after_step"] * steps


def test_grad_clip_bounds_the_gradient_norm_the_optimiser_applies(tiny_cfg):
    free = Recorder()
    fitted(tiny_cfg(epochs=1, output="free"), free)
    assert max(free.grad_norms) > 0.05  # without clipping the gradients are larger than the bound below
    clipped = Recorder()
    trainer = fitted(tiny_cfg(epochs=1, output="clipped", extra=["SOLVER.GRAD_CLIP", "0.05"]), clipped)
    assert trainer.hook(GradClip) is not None
    assert max(clipped.grad_norms) <= 0.05 * (1 + 1e-4)


def test_ema_weights_follow_the_moving_average_and_are_saved_and_evaluated(tiny_cfg):
    decay = 0.8
    recorder = Recorder()
    cfg = tiny_cfg(epochs=1, extra=["SOLVER.EMA", str(decay)])
    trainer = fitted(cfg, recorder)
    expected = {k: v.clone() for k, v in recorder.weights[0].items()}  # the first update copies the weights
    for weights in recorder.weights[1:]:
        for key, value in weights.items():
            if value.is_floating_point():
                expected[key] = decay * expected[key] + (1 - decay) * value
    out = Path(cfg.OUTPUT_DIR)
    saved = load_file(out / "transformer_ema_1.pth")
    for key, value in expected.items():
        if value.is_floating_point():
            torch.testing.assert_close(saved[key], value, rtol=1e-5, atol=1e-6)
    assert not torch.equal(saved["backbone.cls_token"], load_file(out / "transformer_1.pth")["backbone.cls_token"])
    report = json.loads((out / "results.json").read_text())
    assert report["ema"]["weights"] == str(out / "transformer_ema_1.pth") and 0 <= report["ema"]["mAP"] <= 1
    assert trainer.hook(EMA) is not None and "ema" in trainer.other_results


def test_a_resumed_run_continues_the_same_moving_average(tiny_cfg, monkeypatch):
    straight = tiny_cfg(epochs=2, output="straight", extra=["SOLVER.EMA", "0.9"])
    fitted(straight)
    stopped = tiny_cfg(epochs=2, output="stopped", extra=["SOLVER.EMA", "0.9"])
    interrupt_in_epoch(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        fitted(stopped)
    monkeypatch.undo()
    build_trainer(stopped, resume=True).fit()
    for name in ("transformer_2.pth", "transformer_ema_2.pth"):
        a = load_file(Path(straight.OUTPUT_DIR) / name)
        b = load_file(Path(stopped.OUTPUT_DIR) / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_without_clipping_or_averaging_no_such_hook_runs_and_last_pth_is_as_before(tiny_cfg):
    cfg = tiny_cfg(epochs=1)
    trainer = fitted(cfg)
    assert trainer.hook(GradClip) is None and trainer.hook(EMA) is None
    assert set(load_file(Path(cfg.OUTPUT_DIR) / "last.pth")) == {"epoch", "model", "optimizer", "scaler", "history",
                                                                 "config"}
