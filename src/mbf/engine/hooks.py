"""What a training run does around its steps, as hooks (fast-reid's HookBase pattern).

The :class:`~mbf.engine.trainer.Trainer` calls, in the order the hooks were given:
``before_train(trainer)``; per epoch ``before_epoch(trainer, epoch)``; per step
``before_step(trainer, batch)`` (the batch on the device, before the forward pass),
``before_update(trainer, out)`` (gradients computed, not yet applied: clip them here) and
``after_step(trainer, out)`` (the weights updated: average them here); then
``after_epoch(trainer, epoch, record)`` (``record``: the epoch's losses, updated in place, e.g.
with evaluation metrics); and ``after_train(trainer)``. A hook with state that a resume needs
returns it from ``state_dict()`` (tensors and plain values only) and takes it back in
``load_state_dict()``. None of them reads the config: :func:`~mbf.engine.build.build_trainer`
gives each its settings.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.tensorboard import SummaryWriter

from ..distributed import DistInfo
from ..errors import OutputError
from ..runtime import seed_everything
from .checkpoint import atomic_save, unwrap
from .evaluation import log_metrics, results_entry, write_results
from .report import plot_training_curve, write_retrieval_picture
from .run_folder import LAST

log = logging.getLogger("mbf.train")


class Hook:
    def before_train(self, trainer) -> None:
        pass

    def before_epoch(self, trainer, epoch: int) -> None:
        pass

    def before_step(self, trainer, batch: dict) -> None:
        pass

    def before_update(self, trainer, out) -> None:
        pass

    def after_step(self, trainer, out) -> None:
        pass

    def after_epoch(self, trainer, epoch: int, record: dict) -> None:
        pass

    def after_train(self, trainer) -> None:
        pass

    def state_dict(self) -> dict | None:
        """What a resume needs (None: nothing)."""
        return None

    def load_state_dict(self, state: dict) -> None:
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


class GradClip(Hook):
    """Clip the gradients' global L2 norm to ``max_norm`` before the optimiser applies them
    (SOLVER.GRAD_CLIP); with a loss scaler they are unscaled first."""

    def __init__(self, max_norm: float):
        self.max_norm = float(max_norm)

    def before_update(self, trainer, out) -> None:
        trainer.scaler.unscale_(trainer.optimizer)
        params = [p for group in trainer.optimizer.param_groups for p in group["params"] if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(params, self.max_norm)


class EMA(Hook):
    """An exponential moving average of the weights (SOLVER.EMA: its decay), updated after every
    optimiser step: ``ema = decay * ema + (1 - decay) * weights``, buffers (BatchNorm statistics)
    included. Its weights are saved beside the raw ones (:class:`Checkpoints`) and evaluated at
    the end (:class:`FinalEvaluation`); its state travels in ``last.pth``."""

    def __init__(self, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the EMA decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.average: AveragedModel | None = None
        self._saved: dict | None = None  # from last.pth, applied once the averaged copy exists

    def before_train(self, trainer) -> None:
        self.average = AveragedModel(unwrap(trainer.model), multi_avg_fn=get_ema_multi_avg_fn(self.decay),
                                     use_buffers=True)
        if self._saved is not None:
            self.average.load_state_dict(self._saved)
            self._saved = None

    def after_step(self, trainer, out) -> None:
        self.average.update_parameters(unwrap(trainer.model))

    @property
    def model(self) -> torch.nn.Module:
        """The averaged network (the trained architecture, loadable as its weights)."""
        return self.average.module

    def weights(self) -> dict:
        return self.model.state_dict()

    def state_dict(self) -> dict | None:
        return None if self.average is None else self.average.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self._saved = state


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
        record.update({"rank1": result.rank(1), "mAP": float(result.mAP)})
        self.last = (epoch, result)


class Checkpoints(Hook):
    """The weights ``<name>_<epoch>.pth`` every ``period`` epochs and after the last (and those of
    each ``extra`` source, e.g. the EMA's as ``<name>_ema_<epoch>.pth``), then ``last.pth`` (the
    whole training state) after every epoch. Main process only.

    The order makes a resume complete: once ``last.pth`` says epoch e is done, the weights of
    epoch e are on disk. A run killed between the two repeats epoch e and writes both again; a
    ``last.pth`` from a run killed in the old order gets its missing weights written from its
    own state when the run is resumed (:meth:`before_train`).
    """

    def __init__(self, output_dir: Path, name: str, period: int, max_epochs: int, dist: DistInfo,
                 extra: dict[str, Callable[[], dict]] | None = None):
        self.output_dir, self.name, self.period, self.max_epochs, self.dist = output_dir, name, period, max_epochs, dist
        self.sources: dict[str, Callable[[], dict]] = {"": None, **(extra or {})}

    def weights_path(self, epoch: int, source: str = "") -> Path:
        return self.output_dir / f"{self.name}_{source + '_' if source else ''}{epoch}.pth"

    def saves_weights(self, epoch: int) -> bool:
        return epoch % self.period == 0 or epoch == self.max_epochs

    def count(self, start_epoch: int = 1) -> int:
        """How many weights files the epochs from ``start_epoch`` on will write."""
        return len(self.sources) * sum(self.saves_weights(e) for e in range(start_epoch, self.max_epochs + 1))

    def _weights(self, trainer, source: str) -> dict:
        return unwrap(trainer.model).state_dict() if not source else self.sources[source]()

    def before_train(self, trainer) -> None:
        done = trainer.start_epoch - 1
        if not (self.dist.is_main and done >= 1 and self.saves_weights(done)):
            return
        for source in self.sources:
            if not self.weights_path(done, source).is_file():
                atomic_save(self._weights(trainer, source), self.weights_path(done, source))
                log.info("wrote %s from %s: the run was stopped before it was saved", self.weights_path(done, source), LAST)

    def after_epoch(self, trainer, epoch: int, record: dict) -> None:
        if not self.dist.is_main:
            return
        try:
            if self.saves_weights(epoch):
                for source in self.sources:
                    atomic_save(self._weights(trainer, source), self.weights_path(epoch, source))
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
    """After training: every test set evaluated (``evaluate(model, done=...) -> {name: result}``),
    reusing the periodic evaluation of the last epoch; each of ``others`` (e.g. the EMA's
    weights) evaluated the same way. The results go to ``trainer.results`` and
    ``trainer.other_results``. Main process only."""

    def __init__(self, evaluate: Callable, periodic: PeriodicEvaluation, max_epochs: int, dist: DistInfo,
                 train_name: str, others: dict[str, Callable[[], torch.nn.Module]] | None = None):
        self.evaluate, self.periodic, self.max_epochs, self.dist = evaluate, periodic, max_epochs, dist
        self.train_name, self.others = train_name, dict(others or {})

    def after_train(self, trainer) -> None:
        if not self.dist.is_main:
            return
        model = unwrap(trainer.model)
        last = self.periodic.last
        if last and last[0] == self.max_epochs:
            done = {self.train_name: last[1]}
        else:
            done = {self.train_name: self.periodic.evaluate(model)}
            log_metrics(log, done[self.train_name], f"Validation Results - Epoch: {self.max_epochs}")
        trainer.results = self.evaluate(model, done=done)
        trainer.other_results = {}
        for name, other in self.others.items():
            log.info("evaluating the %s weights", name)
            trainer.other_results[name] = self.evaluate(other())


class Results(Hook):
    """``results.json`` after the final evaluation (see :func:`~mbf.engine.evaluation.write_results`):
    the raw weights' metrics, and each other weights' (e.g. ``ema``) under its name. Main
    process only."""

    def __init__(self, output_dir: Path, config_file: str, weights: Path, dist: DistInfo,
                 other_weights: dict[str, Path] | None = None):
        self.output_dir, self.config_file, self.weights, self.dist = output_dir, config_file, weights, dist
        self.other_weights = dict(other_weights or {})

    def after_train(self, trainer) -> None:
        if not self.dist.is_main:
            return
        others = {name: results_entry(results, self.other_weights[name])
                  for name, results in trainer.other_results.items()}
        path = write_results(self.output_dir, trainer.results, self.config_file, self.weights, extra=others)
        log.info("results written to %s", path)


class Pictures(Hook):
    """After training: the training curve, and with ``retrieval`` the top-10 lists of a few
    queries of the first set and the part masks (``part_masks(model)``, nothing for a model
    without parts). Main process only."""

    def __init__(self, output_dir: Path, dist: DistInfo, retrieval: bool = False,
                 part_masks: Callable | None = None):
        self.output_dir, self.dist, self.retrieval, self.part_masks = output_dir, dist, retrieval, part_masks

    def after_train(self, trainer) -> None:
        if not self.dist.is_main:
            return
        plot_training_curve(trainer.history, self.output_dir / "training_curve.png")
        if self.retrieval:
            write_retrieval_picture(self.output_dir / "retrieval.png", next(iter(trainer.results.values())))
            if self.part_masks is not None:
                self.part_masks(unwrap(trainer.model))
