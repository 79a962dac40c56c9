"""Config -> a training run or an evaluation: the only module of :mod:`mbf.engine` that reads
the config.

:func:`build_trainer` checks the settings and the run folder (taking its lock), builds the
data, the part-label source, the model and its step (by ``MODEL.NAME``), the criterion, the
optimiser and the evaluation once, and hands each hook its settings; :func:`run_test` is the
test command's work (weights -> every test set -> results). Below this module nothing reads
the config.
"""
from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

from torch import nn

from ..config import check_training, config_mapping
from ..data.build import build_test_loader, build_test_transform, build_train_loader, evaluation_set_names, \
    load_dataset, load_test_set
from ..distributed import DistInfo, init_distributed
from ..errors import ConfigError
from ..evaluation import Evaluator
from ..files import FolderLock, check_writable, removing_new_folders
from ..losses import build_criterion
from ..modeling import architecture, build_model, build_model_from_checkpoint, build_step
from ..parsing import build_part_labels
from ..runtime import attach_log_file, resolve_device, seed_everything, set_threads
from .evaluation import Evaluation, TestSet, write_results
from .hooks import (EMA, Checkpoints, EpochSeed, FinalEvaluation, GradClip, Hook, LRSchedule, PeriodicEvaluation,
                    Pictures, Results, TensorBoard)
from .optim import build_optimizer, build_scheduler
from ..precision import inference_precision, training_precision
from .report import write_part_masks_picture, write_retrieval_picture
from .run_folder import (LAST, RunStart, check_free_space, claim_test_folder, clear_run, environment, open_run_folder,
                         remove_run_temporaries, write_run_records)
from .trainer import Trainer

log = logging.getLogger("mbf.train")


# ---------------------------------------------------------------------------------- evaluation
def build_evaluation(cfg, model: nn.Module, device, datasets: dict | None = None, weights: str = "") -> Evaluation:
    """The test sets of DATASETS.TEST_NAMES (or the training dataset) with their loaders, the
    evaluator of TEST.* and the inference precision of TEST.AMP, built once; ``datasets``:
    sets already read, by name (the training dataset: its query and gallery are the periodic
    evaluation's). Every set is read and checked against the model's cameras now, so a
    missing folder is reported before any work; ``weights`` is named in that message."""
    datasets = dict(datasets or {})
    names = evaluation_set_names(cfg)
    for name in names:
        if name not in datasets:
            datasets[name] = load_test_set(cfg, name)
    sets = {name: TestSet(name, dataset, build_test_loader(cfg, list(dataset.query) + list(dataset.gallery)))
            for name, dataset in datasets.items()}
    evaluation = Evaluation(sets, names, Evaluator.from_config(cfg, num_query=0), device,
                            inference_precision(cfg.TEST.AMP, cfg.TEST.AMP_DTYPE, device))
    evaluation.check_cameras(model, weights)
    return evaluation


def _part_masks(cfg, items: list, path: Path, device):
    """``draw(model)``: the part-masks picture of ``items`` at ``path`` (nothing for a model without parts)."""
    return functools.partial(write_part_masks_picture, path, items=items, transform=build_test_transform(cfg),
                             mean=list(cfg.INPUT.PIXEL_MEAN), std=list(cfg.INPUT.PIXEL_STD), device=device)


def run_test(cfg, config_file: str = ""):
    """Evaluate TEST.WEIGHT on every test set into a folder of its own under OUTPUT_DIR/test/;
    returns the first set's result."""
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
    seed_everything(cfg.SOLVER.SEED)
    model = build_model_from_checkpoint(cfg, weights, num_views=1)  # no dataset read here has view labels
    evaluation = build_evaluation(cfg, model, device, weights=weights)  # every set read and checked first
    model.to(device)

    output_dir, lock = claim_test_folder(cfg.OUTPUT_DIR, weights)
    with lock:
        attach_log_file(logging.getLogger("mbf"), output_dir, "test_log.txt")
        write_run_records(output_dir, cfg.dump(), environment(device, evaluation.precision), config_file)
        logging.getLogger("mbf.test").info("evaluating %s (%s); outputs in %s", weights,
                                           evaluation.precision.describe(), output_dir)
        results = evaluation.evaluate(model, progress=True)
        path = write_results(output_dir, results, config_file, weights)
        logging.getLogger("mbf.test").info("results written to %s", path)
        first, result = next(iter(results.items()))
        if cfg.TEST.VISUALIZE:
            write_retrieval_picture(output_dir / "retrieval.png", result)
            _part_masks(cfg, evaluation.sets[first].dataset.query, output_dir / "part_masks.png", device)(model)
    return result


# ---------------------------------------------------------------------------------- training
def build_trainer(cfg, config_file: str = "", resume: bool = False, overwrite: bool = False) -> Trainer:
    """The run the config describes, in OUTPUT_DIR, holding the folder's lock until ``fit`` ends.

    ``resume`` continues the run saved there (its config must match, see
    :mod:`mbf.engine.run_folder`); ``overwrite`` replaces a run found there. Without either, a
    folder that holds another run is refused before anything is built or written.
    """
    check_training(cfg)
    output_dir = Path(cfg.OUTPUT_DIR or ".")
    main_process = int(os.environ.get("RANK", "0")) == 0
    lock = None
    with removing_new_folders(output_dir):  # a refused or failed start leaves no empty folders
        try:
            if main_process:
                check_writable(output_dir, "OUTPUT_DIR")
                lock = FolderLock.for_folder(output_dir, f"OUTPUT_DIR {output_dir}",
                                             "wait for that run to end, or set another OUTPUT_DIR").acquire()
            trainer = _build(cfg, output_dir, config_file, resume, overwrite)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
    trainer.lock = lock
    return trainer


def _build(cfg, output_dir: Path, config_file: str, resume: bool, overwrite: bool) -> Trainer:
    s, max_epochs = cfg.SOLVER, cfg.SOLVER.MAX_EPOCHS
    start = open_run_folder(output_dir, config_mapping(cfg), max_epochs, resume=resume or s.RESUME,
                            overwrite=overwrite)
    distributed = cfg.MODEL.DIST_TRAIN or int(os.environ.get("WORLD_SIZE", "1")) > 1
    dist = init_distributed(cfg.MODEL.DEVICE, single=cfg.MODEL.DIST_TRAIN) if distributed else DistInfo()
    device = resolve_device(cfg.MODEL.DEVICE, cfg.MODEL.DEVICE_ID, dist.local_rank if dist.enabled else None)
    log.info("torch uses %d CPU threads (MODEL.CPU_THREADS %d)", set_threads(cfg.MODEL.CPU_THREADS),
             cfg.MODEL.CPU_THREADS)
    seed_everything(s.SEED)

    arch = architecture(cfg)
    dataset = load_dataset(cfg, verbose=dist.is_main, dist=dist)
    # the global baseline never looks at part labels: do not read or check them
    labels = build_part_labels(cfg) if arch.part_labels else None
    loader = build_train_loader(cfg, dataset, mask_loader=labels.loader if labels else None,
                                rank=dist.rank, world_size=dist.world_size)
    num_classes = dataset.num_train_pids
    # a resumed run takes every weight from last.pth: no ImageNet file is needed then
    model = build_model(cfg, num_classes, dataset.num_train_cams, dataset.num_train_vids,
                        pretrained=start.state is None).to(device)
    # every test set (DATASETS.TEST_NAMES), built now so that a missing one fails before training
    evaluation = build_evaluation(cfg, model, device, {cfg.DATASETS.NAMES: dataset}) if dist.is_main else None
    parser = labels.make_parser().to(device) if labels and labels.make_parser else None
    step = build_step(cfg, model, build_criterion(cfg, num_classes), parser)
    if dist.enabled:
        step = nn.parallel.DistributedDataParallel(step, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = build_optimizer(cfg, model)
    precision = training_precision(s.AMP, s.AMP_DTYPE, device)

    hooks = _hooks(cfg, output_dir, config_file, dataset, evaluation, optimizer, device, dist)
    if dist.is_main:
        check_free_space(output_dir, model, optimizer, next(h for h in hooks if isinstance(h, Checkpoints))
                         .count(start.start_epoch))
    trainer = Trainer(step, model, loader, optimizer, precision, device, max_epochs, hooks, dist=dist,
                      log_period=s.LOG_PERIOD, output_dir=output_dir, config_text=cfg.dump())
    if start.state is not None:
        trainer.load_state(start.state)
    if dist.is_main:
        _write_records(cfg, config_file, trainer, start, overwrite)
    return trainer


def _hooks(cfg, output_dir: Path, config_file: str, dataset, evaluation: Evaluation | None, optimizer, device,
           dist: DistInfo) -> list[Hook]:
    """The run's hooks, in the order they act: seeding, LR, gradient clipping, weight averaging,
    periodic evaluation, checkpoints; on the main process TensorBoard, the final evaluation,
    results.json and the pictures."""
    s, max_epochs, train_name = cfg.SOLVER, cfg.SOLVER.MAX_EPOCHS, cfg.DATASETS.NAMES
    hooks: list[Hook] = [EpochSeed(s.SEED, device, dist.rank), LRSchedule(build_scheduler(cfg, optimizer))]
    if s.GRAD_CLIP > 0:  # the values were checked by check_training
        hooks.append(GradClip(s.GRAD_CLIP))
    ema = EMA(s.EMA) if s.EMA > 0 else None
    if ema is not None:
        hooks.append(ema)
    periodic = PeriodicEvaluation(
        functools.partial(evaluation.evaluate_set, name=train_name) if evaluation else None,
        s.EVAL_PERIOD, max_epochs, dist)
    extra = {"ema": ema.weights} if ema else {}
    checkpoints = Checkpoints(output_dir, cfg.MODEL.NAME, s.CHECKPOINT_PERIOD, max_epochs, dist, extra=extra)
    hooks += [periodic, checkpoints]
    if dist.is_main:
        pictures = bool(cfg.TEST.VISUALIZE or train_name == "synthetic_occ")
        hooks += [
            TensorBoard(output_dir / "tensorboard"),
            FinalEvaluation(evaluation.evaluate, periodic, max_epochs, dist, train_name,
                            others={"ema": lambda: ema.model} if ema else None),
            Results(output_dir, config_file, checkpoints.weights_path(max_epochs), dist,
                    other_weights={name: checkpoints.weights_path(max_epochs, name) for name in extra}),
            # draws nothing for a model without parts (the global baseline)
            Pictures(output_dir, dist, retrieval=pictures,
                     part_masks=_part_masks(cfg, dataset.query, output_dir / "part_masks.png", device)),
        ]
    return hooks


def _write_records(cfg, config_file: str, trainer: Trainer, start: RunStart, overwrite: bool) -> None:
    stale = remove_run_temporaries(trainer.output_dir)
    if stale:
        log.info("removed %d temporary files of an interrupted run from %s", len(stale), trainer.output_dir)
    if overwrite:
        removed = clear_run(trainer.output_dir)
        if removed:
            log.warning("--overwrite: removed the previous run's %s from %s", ", ".join(removed), trainer.output_dir)
    env = environment(trainer.device, trainer.precision, trainer.dist.world_size)
    write_run_records(trainer.output_dir, cfg.dump(), env, config_file, start)
    log.info("training precision: %s", trainer.precision.describe())
    for key, (old, new) in start.changed.items():
        log.info("resuming with %s changed: %r -> %r", key, old, new)
