"""The mixed-precision code paths on the CPU: bfloat16 autocast when asked for explicitly.

This is the only check these paths get on machines without a GPU: it proves the training step,
the losses and evaluation run under autocast without dtype errors and that bfloat16
descriptors stay close to float32. It proves nothing about CUDA float16 numerics, the
gradient scaler or GPU speed (see docs/BENCHMARKS.md, "Mixed precision").
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from mbf.data import build_test_loader
from mbf.data.build import load_dataset
from mbf.engine.evaluation import extract_features
from mbf.precision import inference_precision, training_precision
from mbf.engine.build import build_evaluation, build_trainer
from mbf.errors import ConfigError

CPU = torch.device("cpu")
# bfloat16 keeps 8 bits of mantissa (relative step 2^-8 = 0.4%); through the tiny models the
# descriptors move by ~0.13% (measured), so 1% leaves room without hiding a float16/float32 mix-up
DESCRIPTOR_RTOL = 1e-2


def test_the_cpu_trains_in_float32_unless_bfloat16_is_asked_for():
    assert not training_precision(True, "float16", CPU).enabled  # the default: SOLVER.AMP True, float16
    assert not training_precision(False, "bfloat16", CPU).enabled
    bf16 = training_precision(True, "bfloat16", CPU)
    assert bf16.dtype == torch.bfloat16 and not bf16.needs_scaler
    assert training_precision(True, "float16", torch.device("cuda", 0)).needs_scaler
    with pytest.raises(ConfigError, match="SOLVER.AMP_DTYPE"):
        training_precision(True, "fp8", CPU)


def test_test_amp_is_off_by_default_and_refuses_float16_on_the_cpu(tiny_cfg):
    cfg = tiny_cfg()
    assert cfg.TEST.AMP is False
    assert not inference_precision(cfg.TEST.AMP, cfg.TEST.AMP_DTYPE, CPU).enabled
    with pytest.raises(ConfigError, match="TEST.AMP_DTYPE 'float16' is not available on the cpu"):
        inference_precision(True, "float16", CPU)


@pytest.mark.parametrize("name", ["transformer", "transreid"])
def test_training_steps_run_under_cpu_bfloat16_autocast(tiny_cfg, name):
    cfg = tiny_cfg(epochs=1, output=name, extra=["MODEL.NAME", name, "SOLVER.AMP", "True",
                                                 "SOLVER.AMP_DTYPE", "bfloat16"])
    trainer = build_trainer(cfg)
    seen = []
    linear = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Linear))
    linear.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    record = trainer.train_epoch(1)
    assert seen and set(seen) == {torch.bfloat16}
    assert math.isfinite(record["loss"]) and record["loss"] > 0
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # master weights stay float32
    env = json.loads((Path(cfg.OUTPUT_DIR) / "environment.json").read_text())
    assert (env["amp"], env["amp_dtype"]) == (True, "bfloat16")


@pytest.mark.parametrize("name", ["transformer", "transreid"])
def test_bfloat16_evaluation_stays_close_to_float32(tiny_cfg, name):
    cfg = tiny_cfg(output=f"eval_{name}", extra=["MODEL.NAME", name])
    trainer = build_trainer(cfg)
    trainer.close()
    model = trainer.model.eval()
    dataset = load_dataset(cfg, verbose=False)
    loader = build_test_loader(cfg, list(dataset.query) + list(dataset.gallery))
    f32 = extract_features(model, loader, CPU).feats
    bf16 = extract_features(model, loader, CPU, inference_precision(True, "bfloat16", CPU)).feats
    assert bf16.dtype == torch.float32
    rel = ((bf16 - f32).norm() / f32.norm()).item()
    assert 0 < rel < DESCRIPTOR_RTOL  # > 0: autocast really ran in bfloat16

    cfg.defrost()
    cfg.TEST.AMP = True
    cfg.freeze()
    result = build_evaluation(cfg, model, CPU, {cfg.DATASETS.NAMES: dataset}).evaluate_set(model, cfg.DATASETS.NAMES)
    assert 0.0 <= result.mAP <= 1.0 and len(result.cmc) > 0
