"""Evaluating one model on several test sets (``DATASETS.TEST_NAMES``) in one run.

The usual occluded / partial protocol trains once on Market-1501 and tests on Occluded-REID,
Partial-REID and Partial-iLIDS; ``evaluate_sets`` runs each set's query + gallery through the
model, logs its metrics and returns them by dataset name, in the listed order.
"""
from __future__ import annotations

import logging

from torch import nn

from ..errors import DatasetError
from .datasets import evaluation_set_names, load_test_set
from .inference import evaluate_model, log_metrics

log = logging.getLogger("mbf.test")


def model_cameras(model: nn.Module) -> int:
    """Entries of the model's camera embedding (0: none, any camera id is accepted)."""
    backbone = getattr(model, "backbone", model)
    return int(getattr(backbone, "num_cameras", 0) or 0)


def check_cameras(name: str, dataset, model: nn.Module, weights: str = "") -> None:
    """A DatasetError when a test set has cameras that the model's camera embedding lacks;
    ``weights`` (the checkpoint the model came from) is named in the message when given."""
    count = model_cameras(model)
    cams = {item.camid for item in list(dataset.query) + list(dataset.gallery)}
    if count and cams and max(cams) >= count:
        raise DatasetError(
            f"{weights + ': ' if weights else ''}the model's camera table (MODEL.SIE_CAMERA) has {count} cameras, but test set {name!r} uses "
            f"{max(cams) + 1} (camera ids up to {max(cams)}); evaluate it with a model trained on as many cameras, "
            "or one without SIE_CAMERA"
        )


def load_evaluation_sets(cfg, model: nn.Module, datasets: dict | None = None, weights: str = "") -> dict:
    """``{name: dataset}`` for every set to evaluate, each checked against the model's cameras.

    ``datasets``: sets already built, by name (reused). Building all of them up front means a
    missing folder is reported before any work, not after training.
    """
    datasets = dict(datasets or {})
    for name in evaluation_set_names(cfg):
        if name not in datasets:
            datasets[name] = load_test_set(cfg, name)
        check_cameras(name, datasets[name], model, weights)
    return datasets


def evaluate_sets(cfg, model: nn.Module, device, progress: bool = False, datasets: dict | None = None,
                  done: dict | None = None) -> dict:
    """``{dataset name: EvalResult}`` for every set of ``DATASETS.TEST_NAMES`` (or the training set).

    ``datasets``: sets already built, by name (see :func:`load_evaluation_sets`).
    ``done``: results already computed, by name (not evaluated again).
    """
    datasets = load_evaluation_sets(cfg, model, datasets)
    results = {}
    for name in evaluation_set_names(cfg):
        if name in (done or {}):
            results[name] = done[name]
            continue
        dataset = datasets[name]
        log.info("evaluating on %s (%d queries, %d gallery images)", name, len(dataset.query), len(dataset.gallery))
        results[name] = evaluate_model(cfg, model, dataset, device, progress=progress)
        log_metrics(log, results[name], f"Validation Results - {name}")
    return results


def per_set_entries(results: dict) -> dict:
    """results.json entries by dataset name: rank1/5/10, mAP and the query / gallery sizes."""
    return {
        name: {**result.summary(), "num_query": len(result.q_paths), "num_gallery": len(result.g_paths)}
        for name, result in results.items()
    }
