"""Seed keys this implementation does not use.

The seed's YAML files (TransReID's config schema) carry keys MBF never reads. They stay
accepted so those files load unchanged, but a value other than the default logs one warning
naming the key, since it changes nothing here. Where the reference would build a *different
model* from another value, that value is an error instead of a silently different run.
"""
from __future__ import annotations

import logging

from ..errors import ConfigError

log = logging.getLogger("mbf.config")

# key -> why it has no effect here
NO_EFFECT = {
    "MODEL.LAST_STRIDE": "a ViT has no last stride (ResNet backbones only)",
    "MODEL.SHIFT_NUM": "it configures TransReID's jigsaw branch, which MBF does not have",
    "MODEL.SHUFFLE_GROUP": "it configures TransReID's jigsaw branch, which MBF does not have",
    "MODEL.DEVIDE_LENGTH": "it configures TransReID's jigsaw branch, which MBF does not have",
    "MODEL.RE_ARRANGE": "it configures TransReID's jigsaw branch, which MBF does not have",
    "SOLVER.CENTER_LR": "there is no center loss (MODEL.IF_WITH_CENTER must be 'no')",
    "SOLVER.CENTER_LOSS_WEIGHT": "there is no center loss (MODEL.IF_WITH_CENTER must be 'no')",
    "SOLVER.COSINE_MARGIN": "the ID loss is softmax cross-entropy (no cosine-margin classifier)",
    "SOLVER.COSINE_SCALE": "the ID loss is softmax cross-entropy (no cosine-margin classifier)",
    "SOLVER.STEPS": "the learning rate follows the cosine schedule, not steps",
    "SOLVER.GAMMA": "the learning rate follows the cosine schedule, not steps",
    "SOLVER.WARMUP_METHOD": "the warm-up is always linear (SOLVER.WARMUP_FACTOR, SOLVER.WARMUP_EPOCHS)",
    "TEST.EVAL": "training always ends with an evaluation on the query / gallery split",
    "TEST.DIST_MAT": "the distance matrix is not written to a file",
    "HUMAN_PARSING.NAME": "the parser is always the HRNet of HUMAN_PARSING.EXTRA",
    "HUMAN_PARSING.PRETRAINED": "the parser's weights come from HUMAN_PARSING.MODEL_FILE",
}

# what this implementation behaves as, where that is not the key's default (the seed sets it so)
BEHAVES_AS = {"TEST.EVAL": True}

# key -> (the value this implementation computes, what the reference builds from another value)
REFERENCE_VALUE = {
    "MODEL.IF_WITH_CENTER": ("no", "adds a center loss"),
    "MODEL.COS_LAYER": (False, "puts a cosine-margin classifier in place of the ID classifiers"),
    "MODEL.NECK": ("bnneck", "drops the BNNecks"),
    "MODEL.DROP_FIRST": (False, "builds another variant of the recovery decoder"),
}
# MODEL.JPM: the reference's MBF backbone returns every token with JPM True (the seed configs)
# and the CLS token alone with False, where MBF cannot run; MBF here always uses every token,
# so JPM changes nothing for it. For the TransReID global baseline, JPM True is TransReID's
# jigsaw branch: a different model.
JPM_MODELS = ("transreid",)


def _get(cfg, key: str):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def check_unused_keys(cfg, defaults, given: frozenset | set | None = None) -> None:
    """Warn once per key the user set (``given``: the keys of the config file and the overrides;
    None: every key) away from its default where it has no effect; raise ConfigError where the
    reference would build a different model."""
    for key, (expected, effect) in REFERENCE_VALUE.items():
        value = _get(cfg, key)
        if value != expected:
            raise ConfigError(f"{key} {value!r}: the reference then {effect}, which this implementation does not "
                              f"have; set {key} {expected!r}")
    if cfg.MODEL.NAME in JPM_MODELS and cfg.MODEL.JPM:
        raise ConfigError(f"MODEL.JPM True with MODEL.NAME {cfg.MODEL.NAME!r}: the reference then adds TransReID's "
                          "jigsaw branch, which this implementation does not have; set MODEL.JPM False")
    for key, why in NO_EFFECT.items():
        if given is not None and key not in given:
            continue
        value = _get(cfg, key)
        default = BEHAVES_AS[key] if key in BEHAVES_AS else _get(defaults, key)
        if _normal(value) != _normal(default):
            log.warning("config key %s is %r but has no effect here: %s", key, value, why)


def _normal(value):
    return list(value) if isinstance(value, tuple) else value
