"""Descriptor extraction and evaluation of a model on a query + gallery split."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..data import build_test_loader
from ..evaluation import Evaluator
from ..files import write_json
from .precision import inference_precision

log = logging.getLogger(__name__)


@dataclass
class Features:
    feats: torch.Tensor  # [N, D] float32 on the CPU
    pids: np.ndarray
    camids: np.ndarray
    paths: list[str]


@torch.no_grad()
def extract_features(
    model: nn.Module,
    loader,
    device: torch.device,
    amp: bool = False,
    amp_dtype: str = "bfloat16",
    progress: bool = False,
    desc: str = "extract",
) -> Features:
    """Run the eval-mode model over a test loader (batches of dicts) and collect descriptors.

    ``amp``/``amp_dtype`` are TEST.AMP / TEST.AMP_DTYPE (see :mod:`mbf.engine.precision`);
    descriptors always come back as float32.
    """
    precision = inference_precision(amp, amp_dtype, device)
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


def evaluate_model(cfg, model: nn.Module, dataset, device: torch.device, progress: bool = False):
    """Descriptors for query + gallery, then CMC / mAP with the configured evaluator."""
    loader = build_test_loader(cfg, list(dataset.query) + list(dataset.gallery))
    features = extract_features(
        model, loader, device, amp=cfg.TEST.AMP, amp_dtype=cfg.TEST.AMP_DTYPE, progress=progress, desc="test"
    )
    evaluator = Evaluator.from_config(cfg, num_query=len(dataset.query))
    evaluator.update(features.feats, features.pids, features.camids, features.paths)
    return evaluator.compute()


def _rank(result, r: int) -> float:
    """CMC at rank r (a gallery smaller than r has found everything it can by its last rank)."""
    return float(result.cmc[min(r, len(result.cmc)) - 1])


def log_metrics(logger: logging.Logger, result, header: str) -> None:
    """The reference's console lines: mAP then CMC rank-1/5/10."""
    logger.info(header)
    logger.info("mAP: {:.1%}".format(result.mAP))
    for r in (1, 5, 10):
        logger.info("CMC curve, Rank-{:<3}:{:.1%}".format(r, _rank(result, r)))


def write_results(output_dir: str, result, config_file: str, weights: str, extra: dict | None = None) -> Path:
    """``OUTPUT_DIR/results.json`` with rank1/5/10 and mAP as fractions."""
    payload = {
        "rank1": _rank(result, 1),
        "rank5": _rank(result, 5),
        "rank10": _rank(result, 10),
        "mAP": float(result.mAP),
        "config_file": config_file or "",
        "weights": weights or "",
    }
    payload.update(extra or {})
    return write_json(Path(output_dir or ".") / "results.json", payload)
