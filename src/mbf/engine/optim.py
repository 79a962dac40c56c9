"""Optimiser and learning-rate schedule of the reference, built from the config.

Parameter groups follow the reference's rules (bias: BIAS_LR_FACTOR x lr and
WEIGHT_DECAY_BIAS; classifier: 2x lr with LARGE_FC_LR) but parameters sharing the same
(lr, weight decay) are put into one group instead of one group per tensor: the update is
the same and the optimiser runs its fused multi-tensor path.
"""
from __future__ import annotations

from collections import defaultdict

import torch
from timm.scheduler import CosineLRScheduler
from torch import nn

from ..errors import ConfigError

OPTIMIZERS = ("SGD", "Adam", "AdamW")


def param_groups(
    model: nn.Module,
    base_lr: float,
    weight_decay: float,
    bias_lr_factor: float = 1.0,
    weight_decay_bias: float | None = None,
    large_fc_lr: bool = False,
) -> list[dict]:
    """Group trainable parameters by their learning rate and weight decay."""
    weight_decay_bias = weight_decay if weight_decay_bias is None else weight_decay_bias
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = defaultdict(list)
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        lr, wd = base_lr, weight_decay
        if "bias" in name:
            lr, wd = base_lr * bias_lr_factor, weight_decay_bias
        if large_fc_lr and ("classifier" in name or "arcface" in name):
            lr = base_lr * 2
        groups[(lr, wd)].append(param)
    return [{"params": params, "lr": lr, "weight_decay": wd} for (lr, wd), params in groups.items()]


def build_optimizer(cfg, model: nn.Module) -> torch.optim.Optimizer:
    s = cfg.SOLVER
    if s.OPTIMIZER_NAME not in OPTIMIZERS:
        raise ConfigError(f"SOLVER.OPTIMIZER_NAME must be one of {', '.join(OPTIMIZERS)}, got {s.OPTIMIZER_NAME!r}")
    groups = param_groups(
        model, s.BASE_LR, s.WEIGHT_DECAY, s.BIAS_LR_FACTOR, s.WEIGHT_DECAY_BIAS, s.LARGE_FC_LR
    )
    if s.OPTIMIZER_NAME == "SGD":
        return torch.optim.SGD(groups, lr=s.BASE_LR, momentum=s.MOMENTUM)
    if s.OPTIMIZER_NAME == "AdamW":
        return torch.optim.AdamW(groups, lr=s.BASE_LR, weight_decay=s.WEIGHT_DECAY)
    return torch.optim.Adam(groups, lr=s.BASE_LR)


def build_scheduler(cfg, optimizer: torch.optim.Optimizer) -> CosineLRScheduler:
    """Cosine decay over MAX_EPOCHS with a linear warm-up from WARMUP_FACTOR x lr.

    Stepped once per epoch with the 1-based epoch number, as the reference does, so epoch 1
    already runs at the first warm-up increment.
    """
    s = cfg.SOLVER
    return CosineLRScheduler(
        optimizer,
        t_initial=s.MAX_EPOCHS,
        lr_min=s.MIN_LR_FACTOR * s.BASE_LR,
        cycle_decay=0.1,
        cycle_limit=1,
        warmup_t=s.WARMUP_EPOCHS,
        warmup_lr_init=s.WARMUP_FACTOR * s.BASE_LR,
        t_in_epochs=True,
    )
