"""The loss builders: the config read once into checked settings, each loss built once."""
from __future__ import annotations

import logging

import pytest

from mbf.config import get_cfg
from mbf.errors import ConfigError
from mbf.losses import LabelSmoothingCrossEntropy, ReIDLoss, build_criterion, term_weight
from mbf.losses import terms
from mbf.losses.terms import ReIDSettings, build_reid_loss, build_reid_settings, build_seg_settings


def cfg_with(**keys):
    cfg = get_cfg()
    cfg.merge_from_list(["DATALOADER.SAMPLER", "softmax_triplet", "MODEL.METRIC_LOSS_TYPE", "triplet"])
    for key, value in keys.items():
        section, leaf = key.split("__")
        setattr(cfg[section], leaf, value)
    return cfg


@pytest.mark.parametrize("value,smoothed", [("on", True), ("off", False), ("yes", True), ("no", False),
                                            (True, True), (False, False), ("True", True)])
def test_label_smoothing_is_read_as_a_switch(value, smoothed):
    loss = build_reid_loss(cfg_with(MODEL__IF_LABELSMOOTH=value), 6)
    assert isinstance(loss.id_loss, LabelSmoothingCrossEntropy) is smoothed
    with pytest.raises(ConfigError, match="MODEL.IF_LABELSMOOTH"):
        build_reid_settings(cfg_with(MODEL__IF_LABELSMOOTH="maybe"))


def test_settings_hold_plain_values_and_make_the_configured_loss():
    settings = build_reid_settings(cfg_with(SOLVER__MARGIN=0.5, MODEL__ID_LOSS_WEIGHT=0.25))
    assert settings == ReIDSettings(triplet=True, label_smooth=True, margin=0.5, id_weight=0.25, triplet_weight=1.0)
    loss = settings.loss(4)
    assert (loss.triplet.margin, loss.id_weight, loss.id_loss.num_classes) == (0.5, 0.25, 4)
    assert settings.describe() == "ID label-smoothed CE, triplet margin=0.5"
    assert build_reid_settings(cfg_with(MODEL__NO_MARGIN=True)).describe() == "ID label-smoothed CE, triplet soft margin"
    softmax = build_reid_settings(cfg_with(DATALOADER__SAMPLER="softmax"))
    assert not softmax.triplet and not softmax.label_smooth and softmax.loss(4).triplet is None
    assert softmax.describe() == "ID CE, triplet off"
    assert build_seg_settings(cfg_with(MODEL__SEG_EPSILON=0.2)) == (0.2, [0.5, 1.0, 0.8, 0.8, 1.0])


def test_term_weights_come_from_a_plain_mapping():
    assert term_weight({"SEG_HOLISTIC": 0.25}, "seg_holistic") == 0.25
    assert term_weight({}, "my_term") == 1.0


def test_the_criterion_builds_each_reid_loss_once_and_logs_the_checked_settings(monkeypatch, caplog):
    made = []

    class Counted(ReIDLoss):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(terms, "ReIDLoss", Counted)
    monkeypatch.setattr(logging.getLogger("mbf"), "propagate", True)
    with caplog.at_level(logging.INFO, logger="mbf.losses"):
        criterion = build_criterion(cfg_with(), 6)
    reid_terms = [name for name, _, _ in criterion.terms if name.startswith("reid_")]
    assert len(made) == len(reid_terms) == 3  # one per re-ID term, none for the log line
    assert "ID label-smoothed CE, triplet margin=0.3, seg eps 0.1, class weights [0.5, 1.0, 0.8, 0.8, 1.0]" \
        in caplog.text
