"""Optimiser groups and the warm-up + cosine schedule of the reference."""
import math

import pytest
import torch
from torch import nn

from mbf.config import load_config
from mbf.engine.optim import build_optimizer, build_scheduler, param_groups
from mbf.errors import ConfigError


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 4)
        self.classifier = nn.Linear(4, 2, bias=False)
        self.frozen = nn.Parameter(torch.zeros(1), requires_grad=False)


def cfg_with(**solver):
    opts = []
    for key, value in solver.items():
        opts += [f"SOLVER.{key}", str(value)]
    return load_config("configs/OCC_Duke/mbf.yml", opts)


def test_bias_gets_its_factor_and_decay_and_frozen_params_are_left_out():
    groups = param_groups(Tiny(), base_lr=0.004, weight_decay=1e-4, bias_lr_factor=2, weight_decay_bias=0.0)
    by_lr = {(g["lr"], g["weight_decay"]): len(g["params"]) for g in groups}
    assert by_lr == {(0.004, 1e-4): 2, (0.008, 0.0): 1}


def test_large_fc_lr_doubles_the_classifier():
    groups = param_groups(Tiny(), base_lr=0.1, weight_decay=0.0, large_fc_lr=True)
    classifier = Tiny().classifier.weight.shape
    lrs = {g["lr"] for g in groups if any(p.shape == classifier for p in g["params"])}
    assert lrs == {0.2}


def test_sgd_with_the_seed_momentum():
    opt = build_optimizer(cfg_with(), Tiny())
    assert isinstance(opt, torch.optim.SGD)
    assert all(g["momentum"] == 0.9 for g in opt.param_groups)


def test_unknown_optimizer_is_a_config_error():
    with pytest.raises(ConfigError, match="OPTIMIZER_NAME"):
        build_optimizer(cfg_with(OPTIMIZER_NAME="Lion"), Tiny())


def test_schedule_matches_warmup_then_cosine_per_epoch():
    cfg = cfg_with()
    opt = build_optimizer(cfg, Tiny())
    sched = build_scheduler(cfg, opt)
    base, epochs, warm = 0.004, 180, 5
    lo, start = 0.002 * base, 0.01 * base

    def expected(t):
        if t < warm:
            return start + t * (base - start) / warm
        return lo + 0.5 * (base - lo) * (1 + math.cos(math.pi * t / epochs))

    for epoch in (1, 2, 4, 5, 6, 90, 179, 180):
        sched.step(epoch)
        weight_group = next(g for g in opt.param_groups if g["initial_lr"] == base)
        assert weight_group["lr"] == pytest.approx(expected(epoch), rel=1e-9)
    sched.step(181)
    assert opt.param_groups[0]["lr"] == pytest.approx(lo)


def test_scheduler_state_round_trips():
    cfg = cfg_with()
    opt = build_optimizer(cfg, Tiny())
    sched = build_scheduler(cfg, opt)
    sched.step(7)
    state = sched.state_dict()
    opt2 = build_optimizer(cfg, Tiny())
    sched2 = build_scheduler(cfg, opt2)
    sched2.load_state_dict(state)
    sched2.step(8)
    sched.step(8)
    assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in opt2.param_groups]
