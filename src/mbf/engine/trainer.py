"""The training loop: epochs of a training step over a loader, with hooks around it.

:class:`Trainer` runs epochs of a training step over a loader with an optimiser, a numeric
precision and hooks (:mod:`mbf.engine.hooks`: seeding, LR schedule, gradient clipping, weight
averaging, evaluation, checkpoints, TensorBoard, results and pictures); it reads no config.
:func:`mbf.engine.build.build_trainer` builds it from one.

Randomness is re-derived from ``SOLVER.SEED`` and the epoch number at the start of every
epoch (sampler order, augmentation generator, dropout, data-loader workers), so a run resumed
from ``last.pth`` repeats the interrupted epoch exactly and ends where an uninterrupted run
ends.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from ..distributed import DistInfo, barrier
from ..errors import TrainingError
from ..files import FolderLock
from .checkpoint import unwrap
from .hooks import FinalEvaluation, Hook
from ..precision import Precision
from .run_folder import LAST

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
        self.result = None  # the first test set's result after fit (main process)
        self.results: dict = {}  # every test set's, by name (set by FinalEvaluation)
        self.other_results: dict = {}  # other weights' (e.g. the EMA's), by name, then by set
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
            **({"hooks": hooks} if (hooks := self._hook_states()) else {}),
        }

    def _hooks_by_key(self) -> dict:
        """``{"<position>:<class>": hook}``: how a hook's state is filed in last.pth."""
        return {f"{i}:{type(h).__name__}": h for i, h in enumerate(self.hooks)}

    def _hook_states(self) -> dict:
        """The states of the hooks that have one (see Hook.state_dict), by :meth:`_hooks_by_key`."""
        return {key: state for key, h in self._hooks_by_key().items() if (state := h.state_dict()) is not None}

    def load_state(self, state: dict) -> None:
        """Weights, optimiser, loss scaler and history from last.pth. The LR schedule is not
        restored: it is a function of the epoch and the config (so a longer SOLVER.MAX_EPOCHS
        stretches it), and every epoch reseeds the random generators (so none are stored)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.history = list(state.get("history", []))
        saved = state.get("hooks", {})
        for key, hook in self._hooks_by_key().items():
            if key in saved:
                hook.load_state_dict(saved[key])
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
            for hook in self.hooks:
                hook.before_step(self, batch)
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
            for hook in self.hooks:
                hook.before_update(self, out)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            for hook in self.hooks:
                hook.after_step(self, out)

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
        self.result = next(iter(self.results.values()), None) if self.hook(FinalEvaluation) else None
        return self.result

    def close(self) -> None:
        """Release the run folder (another process may then start or resume a run in it)."""
        if self.lock is not None:
            self.lock.release()
