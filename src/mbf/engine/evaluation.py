"""Evaluating a model: descriptors of each test set's query and gallery, then CMC and mAP.

An :class:`Evaluation` holds the test sets of a run, each with its data loader, the
evaluator's settings and the inference precision; :func:`mbf.engine.build.build_evaluation`
makes it once from the config, so the periodic evaluations of a training run and the final
one reuse the same loaders. The usual occluded / partial protocol trains once on Market-1501
and tests on Occluded-REID, Partial-REID and Partial-iLIDS: several sets, evaluated in the
listed order, each logged and reported by name.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..errors import DatasetError
from ..files import write_json
from ..precision import Precision

log = logging.getLogger("mbf.test")


@dataclass
class Features:
    feats: torch.Tensor  # [N, D] float32 on the CPU
    pids: np.ndarray
    camids: np.ndarray
    paths: list[str]


@torch.no_grad()
def extract_features(model: nn.Module, loader, device: torch.device, precision: Precision | None = None,
                     progress: bool = False, desc: str = "extract") -> Features:
    """Run the eval-mode model over a test loader (batches of dicts) and collect descriptors
    (float32, whatever ``precision`` the model ran under)."""
    precision = precision or Precision(torch.device(device).type)  # float32
    was_training = model.training
    model.eval()
    feats, pids, camids, paths = [], [], [], []
    for batch in tqdm(loader, desc=desc, disable=None if progress else True, leave=False):
        img = batch["img"].to(device, non_blocking=True)
        cam = batch["camid"].to(device)
        view = batch["viewid"].to(device)
        with precision.autocast():
            f = model(img, cam_label=cam, view_label=view)
        feats.append(f.float().cpu())
        pids.append(batch["pid"].cpu().numpy())
        camids.append(batch["camid"].cpu().numpy())
        paths.extend(batch["path"])
    model.train(was_training)
    return Features(torch.cat(feats), np.concatenate(pids), np.concatenate(camids), paths)


@dataclass
class TestSet:
    """A dataset's query and gallery with the loader that reads them (query first)."""

    name: str
    dataset: object
    loader: object

    @property
    def num_query(self) -> int:
        return len(self.dataset.query)


def model_cameras(model: nn.Module) -> int:
    """Entries of the model's camera embedding (0: none, any camera id is accepted)."""
    backbone = getattr(model, "backbone", model)
    return int(getattr(backbone, "num_cameras", 0) or 0)


class Evaluation:
    """The test sets of a run (by name, in evaluation order) and how they are evaluated.

    ``evaluator``: an :class:`~mbf.evaluation.Evaluator` (its settings are reused for every set);
    ``names``: the sets a full evaluation reports (DATASETS.TEST_NAMES), a subset of ``sets``.
    """

    def __init__(self, sets: dict[str, TestSet], names: list[str], evaluator, device: torch.device,
                 precision: Precision | None = None):
        missing = [n for n in names if n not in sets]
        if missing:
            raise ValueError(f"test sets {missing} were not built")
        self.sets, self.names, self.evaluator = dict(sets), list(names), evaluator
        self.device, self.precision = torch.device(device), precision

    def check_cameras(self, model: nn.Module, weights: str = "") -> None:
        """A DatasetError when a test set has cameras that the model's camera embedding lacks;
        ``weights`` (the checkpoint the model came from) is named in the message when given."""
        count = model_cameras(model)
        for name, test_set in self.sets.items():
            cams = {item.camid for item in list(test_set.dataset.query) + list(test_set.dataset.gallery)}
            if count and cams and max(cams) >= count:
                raise DatasetError(
                    f"{weights + ': ' if weights else ''}the model's camera table (MODEL.SIE_CAMERA) has {count} "
                    f"cameras, but test set {name!r} uses {max(cams) + 1} (camera ids up to {max(cams)}); evaluate "
                    "it with a model trained on as many cameras, or one without SIE_CAMERA")

    def evaluate_set(self, model: nn.Module, name: str, progress: bool = False):
        """The :class:`~mbf.evaluation.EvalResult` of one set."""
        test_set = self.sets[name]
        features = extract_features(model, test_set.loader, self.device, self.precision, progress, desc="test")
        self.evaluator.reset(num_query=test_set.num_query)
        self.evaluator.update(features.feats, features.pids, features.camids, features.paths)
        return self.evaluator.compute()

    def evaluate(self, model: nn.Module, progress: bool = False, done: dict | None = None) -> dict:
        """``{name: EvalResult}`` for every set of :attr:`names`, each logged; ``done``: results
        already computed, by name (not evaluated again)."""
        results = {}
        for name in self.names:
            if name in (done or {}):
                results[name] = done[name]
                continue
            test_set = self.sets[name]
            log.info("evaluating on %s (%d queries, %d gallery images)", name, test_set.num_query,
                     len(test_set.dataset.gallery))
            results[name] = self.evaluate_set(model, name, progress)
            log_metrics(log, results[name], f"Validation Results - {name}")
        return results


# ------------------------------------------------------------------ reporting
def log_metrics(logger: logging.Logger, result, header: str) -> None:
    """The reference's console lines: mAP then CMC rank-1/5/10."""
    logger.info(header)
    logger.info("mAP: {:.1%}".format(result.mAP))
    for r in (1, 5, 10):
        logger.info("CMC curve, Rank-{:<3}:{:.1%}".format(r, result.rank(r)))


def per_set_entries(results: dict) -> dict:
    """results.json entries by dataset name: rank1/5/10, mAP and the query / gallery sizes."""
    return {name: {**result.summary(), "num_query": len(result.q_paths), "num_gallery": len(result.g_paths)}
            for name, result in results.items()}


def results_entry(results: dict, weights: str | Path) -> dict:
    """The first set's rank1/5/10 and mAP, the weights evaluated, and every set by name."""
    first = next(iter(results.values()))
    return {**first.summary(), "weights": str(weights or ""), **per_set_entries(results)}


def write_results(output_dir: str | Path, results: dict, config_file: str, weights: str | Path,
                  extra: dict | None = None) -> Path:
    """``OUTPUT_DIR/results.json``: the first set's rank1/5/10 and mAP (fractions) at the top
    level, the config file and weights evaluated, every set by name, and ``extra`` entries."""
    first = next(iter(results.values()))
    # the config file between the metrics and the weights, where results.json has always had it
    payload = {**first.summary(), "config_file": config_file or "", **results_entry(results, weights), **(extra or {})}
    return write_json(Path(output_dir or ".") / "results.json", payload)
