"""The test command's work: load weights, extract descriptors, report CMC and mAP."""
from __future__ import annotations

import logging
from pathlib import Path

from ..errors import ConfigError
from .evaluation_sets import evaluate_sets, load_evaluation_sets, per_set_entries
from .inference import write_results
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
    test_sets = load_evaluation_sets(cfg, model, {cfg.DATASETS.NAMES: dataset})  # every set checked before output
    output_dir = cfg.OUTPUT_DIR or "."
    logger = logging.getLogger("mbf")
    attach_log_file(logger, output_dir, "test_log.txt")
    log.info("evaluating %s", cfg.TEST.WEIGHT)
    results = evaluate_sets(cfg, model, device, progress=True, datasets=test_sets)
    first, result = next(iter(results.items()))
    path = write_results(output_dir, result, config_file, cfg.TEST.WEIGHT, extra=per_set_entries(results))
    log.info("results written to %s", path)
    if cfg.TEST.VISUALIZE:
        from .report import write_part_masks_picture, write_retrieval_picture

        write_retrieval_picture(Path(output_dir) / "retrieval.png", result)
        write_part_masks_picture(Path(output_dir) / "part_masks.png", cfg, model, test_sets[first].query, device)
    return result
