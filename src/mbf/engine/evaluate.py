"""The test command's work: load weights, extract descriptors, report CMC and mAP.

The model is sized from the checkpoint (identities, camera table), so evaluation reads only
the query and gallery: the training split need not be on disk. Every evaluation writes into
a folder of its own under ``OUTPUT_DIR/test/`` and never touches the training run's files.
"""
from __future__ import annotations

import logging
from pathlib import Path

from ..errors import CheckpointError, ConfigError
from ..modeling import build_model_from_checkpoint
from .datasets import load_dataset
from .inference import evaluate_model, log_metrics, write_results
from .precision import inference_precision
from .report import write_part_masks_picture, write_retrieval_picture
from .run_folder import RESULTS, environment, write_run_records
from .runtime import attach_log_file, resolve_device, seed_everything

log = logging.getLogger("mbf.test")

TEST_FOLDER = "test"


def test_folder(output_dir: str | Path, weights: str | Path) -> Path:
    """``OUTPUT_DIR/test/<weights stem>``, or ``..._2``, ``..._3`` when that one already holds results."""
    base = Path(output_dir or ".") / TEST_FOLDER
    stem = Path(weights).stem
    folder, n = base / stem, 1
    while (folder / RESULTS).exists():
        n += 1
        folder = base / f"{stem}_{n}"
    return folder


def check_camera_table(model, dataset, weights: str) -> None:
    """A model with camera embeddings can embed only the cameras its table has rows for."""
    backbone = getattr(model, "backbone", None)
    cameras = int(getattr(backbone, "num_cameras", 0) or 0)
    if not cameras:
        return
    used = {cam for _, _, cam, _ in list(dataset.query) + list(dataset.gallery)}
    needed = max(used) + 1
    if needed > cameras:
        raise CheckpointError(
            f"{weights}: its camera table (MODEL.SIE_CAMERA) has {cameras} cameras, but the test set "
            f"{dataset.name!r} uses {needed} (camera ids up to {needed - 1}); evaluate it with a model trained "
            "on as many cameras, or with MODEL.SIE_CAMERA False weights"
        )


def run_test(cfg, config_file: str = ""):
    if not cfg.TEST.WEIGHT:
        raise ConfigError("TEST.WEIGHT is empty: pass the weights to evaluate, e.g. TEST.WEIGHT logs/run/transformer_120.pth")
    weights = cfg.TEST.WEIGHT
    if not Path(weights).is_file():
        raise ConfigError(f"TEST.WEIGHT file not found: {weights}")
    device = resolve_device(cfg.MODEL.DEVICE, cfg.MODEL.DEVICE_ID)
    precision = inference_precision(cfg.TEST.AMP, cfg.TEST.AMP_DTYPE, device)
    seed_everything(cfg.SOLVER.SEED)
    dataset = load_dataset(cfg, test_only=True)
    views = len({view for _, _, _, view in list(dataset.query) + list(dataset.gallery)})
    model = build_model_from_checkpoint(cfg, weights, num_views=views)
    check_camera_table(model, dataset, weights)
    model.to(device)

    output_dir = test_folder(cfg.OUTPUT_DIR, weights)
    attach_log_file(logging.getLogger("mbf"), output_dir, "test_log.txt")
    write_run_records(output_dir, cfg, environment(device, precision), config_file)
    log.info("evaluating %s on %s (%d queries, %d gallery images), %s; outputs in %s", weights, cfg.DATASETS.NAMES,
             len(dataset.query), len(dataset.gallery), precision.describe(), output_dir)
    result = evaluate_model(cfg, model, dataset, device, progress=True)
    log_metrics(log, result, "Validation Results ")
    path = write_results(str(output_dir), result, config_file, weights)
    log.info("results written to %s", path)
    if cfg.TEST.VISUALIZE:
        write_retrieval_picture(output_dir / "retrieval.png", result)
        write_part_masks_picture(output_dir / "part_masks.png", cfg, model, dataset.query, device)
    return result
