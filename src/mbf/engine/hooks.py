"""What a training run does around its steps, as hooks (fast-reid's HookBase pattern).

The :class:`~mbf.engine.trainer.Trainer` calls, in the order the hooks were given:
``before_train(trainer)``, then per epoch ``before_epoch(trainer, epoch)`` and
``after_epoch(trainer, epoch, record)`` (``record``: the epoch's losses, updated in place,
e.g. with evaluation metrics), and ``after_train(trainer)``. None of them reads the config:
:func:`~mbf.engine.trainer.build_trainer` gives each its settings.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import torch
from torch.utils.tensorboard import SummaryWriter

from ..errors import OutputError
from .checkpoint import atomic_save, unwrap
from ..distributed import DistInfo
from .inference import log_metrics, write_results
from .report import plot_training_curve, write_retrieval_picture
from .run_folder import LAST
from ..runtime import seed_everything

log = logging.getLogger("mbf.train")


class Hook:
    def before_train(self, trainer) -> None:
        pass

    def before_epoch(self, trainer, epoch: int) -> None:
        pass

    def after_epoch(self, trainer, epoch: int, record: dict) -> None:
        pass

    def after_train(self, trainer) -> None:
        pass


def epoch_seed(seed: int, epoch: int) -> int:
    """A per-epoch seed derived from the run's seed (any two epochs differ)."""
    return (seed * 1_000_003 + epoch * 7919) % (2**31 - 1)


class EpochSeed(Hook):
    """Re-derive every random stream from (SOLVER.SEED, epoch) at the start of an epoch: Python,
    NumPy and torch, the sampler's order, data-loader workers and the step's augmentation
    generator. A run resumed at epoch e therefore repeats epoch e exactly."""

    def __init__(self, seed: int, device: torch.device, rank: int = 0):
        self.seed, self.device, self.rank = seed, device, rank

    def before_epoch(self, trainer, epoch: int) -> None:
        seed = epoch_seed(self.seed, epoch)
        seed_everything(seed)
        loader = trainer.loader
        batch_sampler = getattr(loader, "batch_sampler", None)
        for candidate in (getattr(loader, "sampler", None), batch_sampler, getattr(batch_sampler, "sampler", None)):
            if hasattr(candidate, "set_epoch"):
                candidate.set_epoch(epoch)
        trainer.generator = torch.Generator(device=self.device)
        trainer.generator.manual_seed(seed + self.rank)


class LRSchedule(Hook):
    """Step the LR scheduler with the 1-based epoch number (the reference's convention)."""

    def __init__(self, scheduler):
        self.scheduler = scheduler

    def before_epoch(self, trainer, epoch: int) -> None:
        self.scheduler.step(epoch)


class PeriodicEvaluation(Hook):
    """Evaluate on the training dataset's query/gallery every ``period`` epochs and after the
    last; the metrics join the epoch's record. Main process only."""

    def __init__(self, evaluate: Callable, period: int, max_epochs: int, dist: DistInfo):
        self.evaluate, self.period, self.max_epochs, self.dist = evaluate, period, max_epochs, dist
        self.last = None  # (epoch, result)

    def after_epoch(self, trainer, epoch: int, record: dict) -> None:
        if not self.dist.is_main or not (epoch % self.period == 0 or epoch == self.max_epochs):
            return
        result = self.evaluate(unwrap(trainer.model))
        log_metrics(log, result, f"Validation Results - Epoch: {epoch}")
        record.update({"rank1": float(result.cmc[0]), "mAP": float(result.mAP)})
        self.last = (epoch, result)


class Checkpoints(Hook):
    """The weights ``<name>_<epoch>.pth`` every ``period`` epochs and after the last, then
    ``last.pth`` (the whole training state) after every epoch. Main process only.

    The order makes a resume complete: once ``last.pth`` says epoch e is done, the weights of
    epoch e are on disk. A run killed between the two repeats epoch e and writes both again; a
    ``last.pth`` from a run killed in the old order gets its missing weights written from its
    own state when the run is resumed (:meth:`before_train`).
    """

    def __init__(self, output_dir: Path, name: str, period: int, max_epochs: int, dist: DistInfo):
        self.output_dir, self.name, self.period, self.max_epochs, self.dist = output_dir, name, period, max_epochs, dist

    def weights_path(self, epoch: int) -> Path:
        return self.output_dir / f"{self.name}_{epoch}.pth"

    def saves_weights(self, epoch: int) -> bool:
        return epoch % self.period == 0 or epoch == self.max_epochs

    def count(self, start_epoch: int = 1) -> int:
        """How many weights files the epochs from ``start_epoch`` on will write."""
        return sum(self.saves_weights(e) for e in range(start_epoch, self.max_epochs + 1))

    def before_train(self, trainer) -> None:
        done = trainer.start_epoch - 1
        if self.dist.is_main and done >= 1 and self.saves_weights(done) and not self.weights_path(done).is_file():
            atomic_save(unwrap(trainer.model).state_dict(), self.weights_path(done))
            log.info("wrote %s from %s: the run was stopped before it was saved", self.weights_path(done), LAST)

    def after_epoch(self, trainer, epoch: int, record: dict) -> None:
        if not self.dist.is_main:
            return
        try:
            if self.saves_weights(epoch):
                atomic_save(unwrap(trainer.model).state_dict(), self.weights_path(epoch))
            atomic_save(trainer.state(epoch), self.output_dir / LAST)
        except OutputError as exc:
            kept = f"{LAST} of epoch {epoch - 1} is the last complete checkpoint" if epoch > 1 else "no checkpoint yet"
            raise OutputError(f"{exc}; training stopped after epoch {epoch} ({kept}): make space, then continue "
                              "with --resume") from None


class TensorBoard(Hook):
    """Epoch losses, learning rate and evaluation metrics under ``OUTPUT_DIR/tensorboard``."""

    def __init__(self, log_dir: Path):
        self.log_dir, self.writer = log_dir, None

    def before_train(self, trainer) -> None:
        self.writer = SummaryWriter(log_dir=str(self.log_dir))

    def after_epoch(self, trainer, epoch: int, record: dict) -> None:
        for key, value in record.items():
            if key == "epoch":
                continue
            group = "train" if key in ("loss", "acc", "lr") else "val" if key in ("rank1", "mAP") else "loss"
            self.writer.add_scalar(f"{group}/{key}", value, epoch)

    def after_train(self, trainer) -> None:
        self.writer.close()


class FinalEvaluation(Hook):
    """After training: every test set (DATASETS.TEST_NAMES) evaluated, ``results.json`` written
    (top level: the first set), pictures drawn. Main process only."""

    def __init__(self, evaluate_sets: Callable, periodic: PeriodicEvaluation, checkpoints: Checkpoints,
                 output_dir: Path, config_file: str, max_epochs: int, dist: DistInfo, train_name: str,
                 pictures: bool, part_pictures: Callable, per_set_entries: Callable):
        self.evaluate_sets, self.periodic, self.checkpoints = evaluate_sets, periodic, checkpoints
        self.output_dir, self.config_file, self.max_epochs, self.dist = output_dir, config_file, max_epochs, dist
        self.train_name, self.pictures, self.part_pictures = train_name, pictures, part_pictures
        self.per_set_entries = per_set_entries
        self.result = None

    def after_train(self, trainer) -> None:
        if not self.dist.is_main:
            return
        model = unwrap(trainer.model)
        last = self.periodic.last
        done = {self.train_name: last[1]} if last and last[0] == self.max_epochs else {}
        if not done:
            result = self.periodic.evaluate(model)
            log_metrics(log, result, f"Validation Results - Epoch: {self.max_epochs}")
            done = {self.train_name: result}
        results = self.evaluate_sets(model, done=done)
        self.result = next(iter(results.values()))
        weights = str(self.checkpoints.weights_path(self.max_epochs))
        path = write_results(str(self.output_dir), self.result, self.config_file, weights,
                             extra=self.per_set_entries(results))
        log.info("results written to %s", path)
        plot_training_curve(trainer.history, self.output_dir / "training_curve.png")
        if self.pictures:
            write_retrieval_picture(self.output_dir / "retrieval.png", self.result)
            self.part_pictures(model)
