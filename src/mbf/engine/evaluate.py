"""The test command's work: load weights, extract descriptors, report CMC and mAP.

The model is sized from the checkpoint (identities, camera table), so evaluation reads only
the query and gallery of each test set (``DATASETS.TEST_NAMES``, or the training dataset):
the training split need not be on disk. Every evaluation writes into a folder of its own
under ``OUTPUT_DIR/test/`` and never touches the training run's files.
"""
from __future__ import annotations

import itertools
import logging
from pathlib import Path

from ..errors import BusyError, ConfigError
from ..files import FolderLock
from ..modeling import build_model_from_checkpoint
from .evaluation_sets import evaluate_sets, load_evaluation_sets, per_set_entries
from .inference import write_results
from .precision import inference_precision
from .report import write_part_masks_picture, write_retrieval_picture
from .run_folder import LAST, RESULTS, environment, write_run_records
from ..runtime import attach_log_file, resolve_device, seed_everything, set_threads

log = logging.getLogger("mbf.test")

TEST_FOLDER = "test"


def claim_test_folder(output_dir: str | Path, weights: str | Path) -> tuple[Path, FolderLock]:
    """``OUTPUT_DIR/test/<weights stem>``, or ``..._2``, ``..._3`` when that one holds results or
    another evaluation is writing into it; returned with its lock held."""
    base = Path(output_dir or ".") / TEST_FOLDER
    stem = Path(weights).stem
    for n in itertools.count(1):
        folder = base / (stem if n == 1 else f"{stem}_{n}")
        if (folder / RESULTS).exists():
            continue
        try:
            return folder, FolderLock.for_folder(folder, f"test folder {folder}").acquire()
        except BusyError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover - itertools.count never ends


def run_test(cfg, config_file: str = ""):
    if not cfg.TEST.WEIGHT:
        raise ConfigError("TEST.WEIGHT is empty: pass the weights to evaluate, e.g. TEST.WEIGHT logs/run/transformer_120.pth")
    weights = cfg.TEST.WEIGHT
    if Path(weights).is_dir():
        found = sorted((p.name for p in Path(weights).glob("*.pth") if p.name != LAST),
                       key=lambda name: (len(name), name))[-3:]
        raise ConfigError(f"TEST.WEIGHT {weights} is a folder, expected a weights file"
                          + (f" such as {Path(weights) / found[-1]} (it holds {', '.join(found)})" if found else ""))
    if not Path(weights).is_file():
        raise ConfigError(f"TEST.WEIGHT file not found: {weights}")
    device = resolve_device(cfg.MODEL.DEVICE, cfg.MODEL.DEVICE_ID)
    set_threads(cfg.MODEL.CPU_THREADS)
    precision = inference_precision(cfg.TEST.AMP, cfg.TEST.AMP_DTYPE, device)
    seed_everything(cfg.SOLVER.SEED)
    model = build_model_from_checkpoint(cfg, weights, num_views=1)  # no dataset read here has view labels
    test_sets = load_evaluation_sets(cfg, model, weights=weights)  # every set read and checked before any output
    model.to(device)

    output_dir, lock = claim_test_folder(cfg.OUTPUT_DIR, weights)
    with lock:
        attach_log_file(logging.getLogger("mbf"), output_dir, "test_log.txt")
        write_run_records(output_dir, cfg, environment(device, precision), config_file)
        log.info("evaluating %s (%s); outputs in %s", weights, precision.describe(), output_dir)
        results = evaluate_sets(cfg, model, device, progress=True, datasets=test_sets)
        first, result = next(iter(results.items()))
        path = write_results(str(output_dir), result, config_file, weights, extra=per_set_entries(results))
        log.info("results written to %s", path)
        if cfg.TEST.VISUALIZE:
            write_retrieval_picture(output_dir / "retrieval.png", result)
            write_part_masks_picture(output_dir / "part_masks.png", cfg, model, test_sets[first].query, device)
    return result
