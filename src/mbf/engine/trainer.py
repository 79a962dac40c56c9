"""The training loop and the one function that builds it from the config.

:class:`Trainer` runs epochs of a training step over a loader with an optimiser, a numeric
precision and hooks (:mod:`mbf.engine.hooks`: seeding, LR schedule, evaluation, checkpoints,
TensorBoard, results and pictures); it reads no config. :func:`build_trainer` is the only
engine code that reads the config: it checks the run folder, builds the data, the part-label
source, the model and its step (by ``MODEL.NAME``), the criterion, the optimiser, and hands
each hook its settings.

Randomness is re-derived from ``SOLVER.SEED`` and the epoch number at the start of every
epoch (sampler order, augmentation generator, dropout, data-loader workers), so a run resumed
from ``last.pth`` repeats the interrupted epoch exactly and ends where an uninterrupted run
ends.
"""
from __future__ import annotations

import functools
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from ..config import check_training
from ..data import build_train_loader
from ..errors import TrainingError
from ..files import FolderLock, check_writable, removing_new_folders
from ..losses import build_criterion
from ..modeling import architecture, build_model, build_step
from ..parsing import build_part_labels
from .checkpoint import unwrap
from .datasets import load_dataset
from ..distributed import DistInfo, barrier, init_distributed
from .evaluation_sets import evaluate_sets, load_evaluation_sets, per_set_entries
from .hooks import Checkpoints, EpochSeed, FinalEvaluation, Hook, LRSchedule, PeriodicEvaluation, TensorBoard
from .inference import evaluate_model
from .optim import build_optimizer, build_scheduler
from .precision import Precision, training_precision
from .report import write_part_masks_picture
from .run_folder import (LAST, RunStart, check_free_space, clear_run, environment, open_run_folder,
                         remove_run_temporaries, write_run_records)
from ..runtime import resolve_device, seed_everything, set_threads

log = logging.getLogger("mbf.train")


@dataclass
class Meter:
    total: float = 0.0
    count: int = 0

    def update(self, value: float, n: int = 1) -> None:
        self.total += value * n
        self.count += n

    @property
    def avg(self) -> float:
        return self.total / max(self.count, 1)


def duration(seconds: float) -> str:
    """``75`` -> ``1 min 15 s``; ``7300`` -> ``2 h 02 min``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Trainer:
    """Epochs ``start_epoch..max_epochs`` of ``step`` over ``loader``.

    ``step(batch, generator)`` returns a :class:`~mbf.modeling.StepOutput` (loss, named terms,
    accuracy); ``model`` is the network inside it (saved in checkpoints). ``config_text`` is
    stored in ``last.pth`` so that a resume can check what it continues.
    """

    def __init__(self, step: nn.Module, model: nn.Module, loader, optimizer: torch.optim.Optimizer,
                 precision: Precision, device: torch.device, max_epochs: int, hooks: list[Hook],
                 dist: DistInfo = DistInfo(), log_period: int = 100, output_dir: Path = Path("."),
                 config_text: str = ""):
        self.step, self.model, self.loader, self.optimizer = step, model, loader, optimizer
        self.precision, self.device, self.dist = precision, device, dist
        self.scaler = precision.grad_scaler()
        self.max_epochs, self.hooks, self.log_period = max_epochs, list(hooks), log_period
        self.output_dir, self.config_text = Path(output_dir), config_text
        self.start_epoch = 1
        self.history: list[dict] = []
        self.generator: torch.Generator | None = None  # set per epoch by the seeding hook
        self.result = None
        self.lock: FolderLock | None = None  # the run folder's, held from build_trainer to the end of fit

    # ------------------------------------------------------------------ state
    def state(self, epoch: int) -> dict:
        """Everything ``last.pth`` holds (plain types only: it loads with ``weights_only``)."""
        return {
            "epoch": epoch,
            "model": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "history": self.history,
            "config": self.config_text,
        }

    def load_state(self, state: dict) -> None:
        """Weights, optimiser, loss scaler and history from last.pth. The LR schedule is not
        restored: it is a function of the epoch and the config (so a longer SOLVER.MAX_EPOCHS
        stretches it), and every epoch reseeds the random generators (so none are stored)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.history = list(state.get("history", []))
        self.start_epoch = int(state["epoch"]) + 1
        log.info("resumed from %s: continuing at epoch %d", self.output_dir / LAST, self.start_epoch)

    def hook(self, kind: type) -> Hook | None:
        """The first hook of type ``kind``."""
        return next((h for h in self.hooks if isinstance(h, kind)), None)

    # ------------------------------------------------------------------ loop
    def _to_device(self, batch: dict) -> dict:
        return {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}

    def train_epoch(self, epoch: int) -> dict:
        """The epoch's hooks' ``before_epoch``, then one pass over the loader; returns the record."""
        for hook in self.hooks:
            hook.before_epoch(self, epoch)
        self.step.train()
        loss_meter, acc_meter = Meter(), Meter()
        term_meters: dict[str, Meter] = {}
        start = time.time()
        n_iter = len(self.loader)
        hide = None if self.dist.is_main else True  # None: a bar only on a terminal, never in log files
        bar = tqdm(self.loader, total=n_iter, desc=f"epoch {epoch}/{self.max_epochs}, iteration 0/{n_iter}",
                   disable=hide, leave=False, dynamic_ncols=True, bar_format="{desc} |{bar}|")
        lr = self.optimizer.param_groups[0]["lr"]
        for it, batch in enumerate(bar, start=1):
            batch = self._to_device(batch)
            self.optimizer.zero_grad(set_to_none=True)
            with self.precision.autocast():
                out = self.step(batch, self.generator)
            if not torch.isfinite(out.loss.detach()):
                terms = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in out.terms.items())
                raise TrainingError(
                    f"non-finite loss at epoch {epoch}, iteration {it}/{n_iter}: total={float(out.loss.detach()):.4g} "
                    f"({terms}); the last good checkpoint is {self.output_dir / LAST}"
                )
            self.scaler.scale(out.loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()

            n = batch["img"].shape[0]
            loss_meter.update(float(out.loss.detach()), n)
            acc_meter.update(float(out.accuracy), 1)
            for name, value in out.terms.items():
                term_meters.setdefault(name, Meter()).update(float(value.detach()), n)
            per_batch = (time.time() - start) / it
            left = per_batch * ((self.max_epochs - epoch) * n_iter + n_iter - it)
            bar.set_description_str(f"epoch {epoch}/{self.max_epochs}, iteration {it}/{n_iter}, loss {loss_meter.avg:.3f}, "
                                    f"acc {acc_meter.avg:.3f}, {per_batch:.2f} s/batch, {duration(left)} left",
                                    refresh=False)
            if it % self.log_period == 0 or it == n_iter:
                log.info("Epoch[{}] Iteration[{}/{}] Loss: {:.3f}, Acc: {:.3f}, Base Lr: {:.2e}".format(
                    epoch, it, n_iter, loss_meter.avg, acc_meter.avg, lr))
        bar.close()
        per_batch = (time.time() - start) / max(n_iter, 1)
        batch_size = getattr(self.loader, "batch_size", None) or 0
        log.info("Epoch {}/{} done. Time per batch: {:.3f}[s] Speed: {:.1f}[samples/s]; training left: about {}".format(
            epoch, self.max_epochs, per_batch, batch_size / per_batch if per_batch else 0.0,
            duration(per_batch * n_iter * (self.max_epochs - epoch))))
        record = {"epoch": epoch, "loss": loss_meter.avg, "acc": acc_meter.avg, "lr": lr}
        record.update({name: m.avg for name, m in term_meters.items()})
        return record

    def fit(self):
        """Train to ``max_epochs``; returns the final evaluation's result (main process). The run
        folder's lock is released at the end, however the run ends."""
        try:
            for hook in self.hooks:
                hook.before_train(self)
            if self.start_epoch > self.max_epochs:
                log.info("training already finished (%d epochs); evaluating the final model", self.max_epochs)
            for epoch in range(self.start_epoch, self.max_epochs + 1):
                record = self.train_epoch(epoch)
                self.history.append(record)  # hooks may add to the record (evaluation metrics)
                for hook in self.hooks:
                    hook.after_epoch(self, epoch, record)
                barrier(self.dist)
            for hook in self.hooks:
                hook.after_train(self)
        finally:
            self.close()
        final = self.hook(FinalEvaluation)
        self.result = final.result if final is not None else None
        return self.result

    def close(self) -> None:
        """Release the run folder (another process may then start or resume a run in it)."""
        if self.lock is not None:
            self.lock.release()


# ---------------------------------------------------------------------------------- build
def build_trainer(cfg, config_file: str = "", resume: bool = False, overwrite: bool = False) -> Trainer:
    """The run the config describes, in OUTPUT_DIR.

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
    start = open_run_folder(output_dir, cfg, resume=resume or cfg.SOLVER.RESUME, overwrite=overwrite)
    distributed = cfg.MODEL.DIST_TRAIN or int(os.environ.get("WORLD_SIZE", "1")) > 1
    dist = init_distributed(cfg.MODEL.DEVICE, single=cfg.MODEL.DIST_TRAIN) if distributed else DistInfo()
    device = resolve_device(cfg.MODEL.DEVICE, cfg.MODEL.DEVICE_ID, dist.local_rank if dist.enabled else None)
    log.info("torch uses %d CPU threads (MODEL.CPU_THREADS %d)", set_threads(cfg.MODEL.CPU_THREADS),
             cfg.MODEL.CPU_THREADS)
    seed_everything(cfg.SOLVER.SEED)

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
    # the final evaluation's sets (DATASETS.TEST_NAMES), built now so that a missing one fails before training
    test_sets = load_evaluation_sets(cfg, model, {cfg.DATASETS.NAMES: dataset}) if dist.is_main else {}
    parser = labels.make_parser().to(device) if labels and labels.make_parser else None
    step = build_step(cfg, model, build_criterion(cfg, num_classes), parser)
    if dist.enabled:
        step = nn.parallel.DistributedDataParallel(step, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = build_optimizer(cfg, model)
    precision = training_precision(cfg.SOLVER.AMP, cfg.SOLVER.AMP_DTYPE, device)

    s, max_epochs = cfg.SOLVER, cfg.SOLVER.MAX_EPOCHS
    periodic = PeriodicEvaluation(functools.partial(evaluate_model, cfg, dataset=dataset, device=device),
                                  s.EVAL_PERIOD, max_epochs, dist)
    checkpoints = Checkpoints(output_dir, cfg.MODEL.NAME, s.CHECKPOINT_PERIOD, max_epochs, dist)
    hooks: list[Hook] = [EpochSeed(s.SEED, device, dist.rank), LRSchedule(build_scheduler(cfg, optimizer)),
                         periodic, checkpoints]
    if dist.is_main:
        # draws nothing for a model without parts (the global baseline)
        part_pictures = functools.partial(write_part_masks_picture, output_dir / "part_masks.png", cfg,
                                          items=dataset.query, device=device)
        hooks += [TensorBoard(output_dir / "tensorboard"), FinalEvaluation(
            functools.partial(evaluate_sets, cfg, device=device, datasets=test_sets), periodic, checkpoints,
            output_dir, config_file, max_epochs, dist, cfg.DATASETS.NAMES,
            pictures=bool(cfg.TEST.VISUALIZE or cfg.DATASETS.NAMES == "synthetic_occ"),
            part_pictures=part_pictures, per_set_entries=per_set_entries)]
    if dist.is_main:
        check_free_space(output_dir, model, optimizer, checkpoints.count(start.start_epoch))
    trainer = Trainer(step, model, loader, optimizer, precision, device, max_epochs, hooks, dist=dist,
                      log_period=s.LOG_PERIOD, output_dir=output_dir, config_text=cfg.dump())
    trainer.dataset = dataset  # for callers (tests, benchmarks); the loop does not use it
    if start.state is not None:
        trainer.load_state(start.state)
    if dist.is_main:
        _write_records(cfg, config_file, trainer, start, overwrite)
    return trainer


def _write_records(cfg, config_file: str, trainer: Trainer, start: RunStart, overwrite: bool) -> None:
    stale = remove_run_temporaries(trainer.output_dir)
    if stale:
        log.info("removed %d temporary files of an interrupted run from %s", len(stale), trainer.output_dir)
    if overwrite:
        removed = clear_run(trainer.output_dir)
        if removed:
            log.warning("--overwrite: removed the previous run's %s from %s", ", ".join(removed), trainer.output_dir)
    env = environment(trainer.device, trainer.precision, trainer.dist.world_size)
    write_run_records(trainer.output_dir, cfg, env, config_file, start)
    log.info("training precision: %s", trainer.precision.describe())
    for key, (old, new) in start.changed.items():
        log.info("resuming with %s changed: %r -> %r", key, old, new)
