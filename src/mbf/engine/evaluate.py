"""The test command's work: load weights, extract descriptors, report CMC and mAP."""
from __future__ import annotations

import logging
from pathlib import Path

from ..errors import ConfigError
from .inference import evaluate_model, log_metrics, write_results
from .runtime import attach_log_file, resolve_device, seed_everything

log = logging.getLogger("mbf.test")


def run_test(cfg, config_file: str = ""):
    from ..modeling import build_model
    from .datasets import load_dataset

    if not cfg.TEST.WEIGHT:
        raise ConfigError("TEST.WEIGHT is empty: pass the weights to evaluate, e.g. TEST.WEIGHT logs/run/transformer_120.pth")
    if not Path(cfg.TEST.WEIGHT).is_file():
        raise ConfigError(f"TEST.WEIGHT file not found: {cfg.TEST.WEIGHT}")
    device = resolve_device(cfg.MODEL.DEVICE, cfg.MODEL.DEVICE_ID)
    seed_everything(cfg.SOLVER.SEED)
    dataset = load_dataset(cfg)
    model = build_model(cfg, dataset.num_train_pids, dataset.num_train_cams, dataset.num_train_vids, pretrained=False)
    model.load_param(cfg.TEST.WEIGHT)
    model.to(device)
    output_dir = cfg.OUTPUT_DIR or "."
    logger = logging.getLogger("mbf")
    attach_log_file(logger, output_dir, "test_log.txt")
    log.info("evaluating %s on %s (%d queries, %d gallery images)", cfg.TEST.WEIGHT, cfg.DATASETS.NAMES,
             len(dataset.query), len(dataset.gallery))
    result = evaluate_model(cfg, model, dataset, device, progress=True)
    log_metrics(log, result, "Validation Results ")
    path = write_results(output_dir, result, config_file, cfg.TEST.WEIGHT)
    log.info("results written to %s", path)
    if cfg.TEST.VISUALIZE:
        from .report import write_part_masks_picture, write_retrieval_picture

        write_retrieval_picture(Path(output_dir) / "retrieval.png", result)
        write_part_masks_picture(Path(output_dir) / "part_masks.png", cfg, model, dataset.query, device)
    return result
