"""Values a training run checks before it builds or writes anything.

Each would otherwise fail late (a division by zero after a whole epoch) or not at all; the
error names the key and the values allowed.
"""
from __future__ import annotations

from ..errors import ConfigError

# key -> what the number counts (all must be integers >= 1)
POSITIVE_INTEGERS = {
    "SOLVER.MAX_EPOCHS": "epochs to train",
    "SOLVER.CHECKPOINT_PERIOD": "epochs between saved weights",
    "SOLVER.EVAL_PERIOD": "epochs between evaluations",
    "SOLVER.LOG_PERIOD": "iterations between log lines",
    "SOLVER.IMS_PER_BATCH": "images per training batch",
    "TEST.IMS_PER_BATCH": "images per test batch",
}
NON_NEGATIVE_INTEGERS = {"SOLVER.WARMUP_EPOCHS": "epochs of linear warm-up"}


def _value(cfg, key: str):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _is_integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_training(cfg) -> None:
    """Raise ConfigError for a training setting that cannot work (naming the key and what it counts)."""
    for keys, low in ((POSITIVE_INTEGERS, 1), (NON_NEGATIVE_INTEGERS, 0)):
        for key, meaning in keys.items():
            value = _value(cfg, key)
            if not _is_integer(value) or value < low:
                raise ConfigError(f"{key} must be an integer >= {low} ({meaning}), got {value!r}")
    if not float(cfg.SOLVER.GRAD_CLIP) >= 0:
        raise ConfigError(f"SOLVER.GRAD_CLIP must be >= 0 (the largest gradient norm; 0: off), got {cfg.SOLVER.GRAD_CLIP!r}")
    if not 0.0 <= float(cfg.SOLVER.EMA) < 1.0:
        raise ConfigError(f"SOLVER.EMA must be in [0, 1) (the decay of the weights' moving average; 0: off), "
                          f"got {cfg.SOLVER.EMA!r}")
