"""The training loop: epochs of MBF steps, evaluation, checkpoints, resume, logging.

Randomness is re-derived from ``SOLVER.SEED`` and the epoch number at the start of every
epoch (sampler order, augmentation generator, dropout, data-loader workers), so a run resumed
from ``last.pth`` repeats the interrupted epoch exactly and ends where an uninterrupted run
ends.
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from ..errors import TrainingError
from .checkpoint import atomic_save, unwrap
from .distributed import DistInfo, barrier, init_distributed
from .evaluation_sets import evaluate_sets, load_evaluation_sets, per_set_entries
from .inference import evaluate_model, log_metrics, write_results
from .optim import build_optimizer, build_scheduler
from .precision import training_precision
from .run_folder import LAST, clear_run, environment, open_run_folder, write_run_records
from .runtime import resolve_device, seed_everything
from .steps import GlobalStep, MBFStep

log = logging.getLogger("mbf.train")


def epoch_seed(seed: int, epoch: int) -> int:
    """A per-epoch seed derived from the run's seed (any two epochs differ)."""
    return (seed * 1_000_003 + epoch * 7919) % (2**31 - 1)


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


class Trainer:
    """One training run in OUTPUT_DIR.

    ``resume`` continues the run saved there (its config must match, see
    :mod:`mbf.engine.run_folder`); ``overwrite`` replaces a run found there. Without either, a
    folder that holds another run is refused before anything is built or written.
    """

    def __init__(self, cfg, config_file: str = "", resume: bool = False, overwrite: bool = False):
        from ..data import build_train_loader
        from ..losses import build_criterion
        from ..modeling import build_model
        from ..parsing import HumanParser, build_mask_loader
        from ..parsing.labels import NUM_PARTS
        from .datasets import load_dataset

        self.cfg = cfg
        self.config_file = config_file
        self.output_dir = Path(cfg.OUTPUT_DIR or ".")
        self.start = open_run_folder(self.output_dir, cfg, resume=resume or cfg.SOLVER.RESUME, overwrite=overwrite)
        distributed = cfg.MODEL.DIST_TRAIN or int(os.environ.get("WORLD_SIZE", "1")) > 1
        self.dist: DistInfo = init_distributed(cfg.MODEL.DEVICE, single=cfg.MODEL.DIST_TRAIN) if distributed else DistInfo()
        self.device = resolve_device(
            cfg.MODEL.DEVICE, cfg.MODEL.DEVICE_ID, self.dist.local_rank if self.dist.enabled else None
        )
        seed_everything(cfg.SOLVER.SEED)

        self.dataset = load_dataset(cfg, verbose=self.dist.is_main, dist=self.dist)
        self.is_mbf = cfg.MODEL.NAME != "transreid"
        # the global baseline never looks at part labels: do not read or check them
        mask_loader = build_mask_loader(cfg) if self.is_mbf else None
        self.train_loader = build_train_loader(
            cfg, self.dataset, mask_loader=mask_loader, rank=self.dist.rank, world_size=self.dist.world_size
        )
        self.num_classes = self.dataset.num_train_pids
        # a resumed run takes every weight from last.pth: no ImageNet file is needed then
        self.model = build_model(
            cfg, self.num_classes, self.dataset.num_train_cams, self.dataset.num_train_vids,
            pretrained=self.start.state is None,
        ).to(self.device)
        # the final evaluation's sets (DATASETS.TEST_NAMES), built now so that a missing one fails before training
        self.test_sets = {}
        if self.dist.is_main:
            self.test_sets = load_evaluation_sets(cfg, self.model, {cfg.DATASETS.NAMES: self.dataset})
        criterion = build_criterion(cfg, self.num_classes)
        if self.is_mbf:
            parser = None
            if mask_loader is None:
                parser = HumanParser.from_config(cfg).to(self.device)
            stride = tuple(cfg.MODEL.STRIDE_SIZE)
            step: nn.Module = MBFStep(
                self.model, criterion, parser, num_parts=NUM_PARTS, stride=stride,
                erase_prob=cfg.INPUT.RE_PROB, erase_attempts=cfg.INPUT.RE_MAX_ATTEMPTS, beta=cfg.MODEL.BETA,
            )
        else:
            step = GlobalStep(self.model, criterion, cfg.INPUT.RE_PROB, cfg.INPUT.RE_MAX_ATTEMPTS)
        self.step = step
        if self.dist.enabled:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.step = nn.parallel.DistributedDataParallel(step, device_ids=device_ids)

        self.optimizer = build_optimizer(cfg, self.model)
        self.scheduler = build_scheduler(cfg, self.optimizer)
        self.precision = training_precision(cfg.SOLVER.AMP, cfg.SOLVER.AMP_DTYPE, self.device)
        self.scaler = self.precision.grad_scaler()
        self.start_epoch = 1
        self.history: list[dict] = []
        self.writer = None
        if self.start.state is not None:
            self._load_state(self.start.state)
        if self.dist.is_main:
            self._write_records(overwrite)

    def _write_records(self, overwrite: bool) -> None:
        if overwrite:
            removed = clear_run(self.output_dir)
            if removed:
                log.warning("--overwrite: removed the previous run's %s from %s", ", ".join(removed), self.output_dir)
        env = environment(self.device, self.precision, self.dist.world_size)
        write_run_records(self.output_dir, self.cfg, env, self.config_file, self.start)
        log.info("training precision: %s", self.precision.describe())
        for key, (old, new) in self.start.changed.items():
            log.info("resuming with %s changed: %r -> %r", key, old, new)

    # ------------------------------------------------------------------ state
    def _state(self, epoch: int) -> dict:
        return {
            "epoch": epoch,
            "model": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "history": self.history,
            "config": self.cfg.dump(),
        }

    def _load_state(self, state: dict) -> None:
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

    def _save(self, epoch: int) -> None:
        if not self.dist.is_main:
            return
        atomic_save(self._state(epoch), self.output_dir / LAST)
        if epoch % self.cfg.SOLVER.CHECKPOINT_PERIOD == 0 or epoch == self.cfg.SOLVER.MAX_EPOCHS:
            name = f"{self.cfg.MODEL.NAME}_{epoch}.pth"
            atomic_save(unwrap(self.model).state_dict(), self.output_dir / name)

    # ------------------------------------------------------------------ loop
    def _begin_epoch(self, epoch: int) -> torch.Generator:
        seed = epoch_seed(self.cfg.SOLVER.SEED, epoch)
        seed_everything(seed)
        sampler = getattr(self.train_loader, "batch_sampler", None)
        for candidate in (getattr(self.train_loader, "sampler", None), sampler, getattr(sampler, "sampler", None)):
            if hasattr(candidate, "set_epoch"):
                candidate.set_epoch(epoch)
        self.scheduler.step(epoch)
        generator = torch.Generator(device=self.device)
        generator.manual_seed(seed + self.dist.rank)
        return generator

    def _to_device(self, batch: dict) -> dict:
        return {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}

    def train_epoch(self, epoch: int) -> dict:
        cfg = self.cfg
        generator = self._begin_epoch(epoch)
        self.step.train()
        loss_meter, acc_meter = Meter(), Meter()
        term_meters: dict[str, Meter] = {}
        start = time.time()
        n_iter = len(self.train_loader)
        hide = None if self.dist.is_main else True  # None: a bar only on a terminal, never in log files
        bar = tqdm(self.train_loader, total=n_iter, desc=f"epoch {epoch}", disable=hide, leave=False,
                   dynamic_ncols=True)
        lr = self.optimizer.param_groups[0]["lr"]
        for it, batch in enumerate(bar, start=1):
            batch = self._to_device(batch)
            self.optimizer.zero_grad(set_to_none=True)
            with self.precision.autocast():
                out = self.step(batch, generator)
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
            bar.set_postfix(loss=f"{loss_meter.avg:.3f}", acc=f"{acc_meter.avg:.3f}")
            if it % cfg.SOLVER.LOG_PERIOD == 0 or it == n_iter:
                log.info(
                    "Epoch[{}] Iteration[{}/{}] Loss: {:.3f}, Acc: {:.3f}, Base Lr: {:.2e}".format(
                        epoch, it, n_iter, loss_meter.avg, acc_meter.avg, lr
                    )
                )
        bar.close()
        elapsed = time.time() - start
        per_batch = elapsed / max(n_iter, 1)
        log.info(
            "Epoch {} done. Time per batch: {:.3f}[s] Speed: {:.1f}[samples/s]".format(
                epoch, per_batch, self.train_loader.batch_sampler.batch_size / per_batch
                if hasattr(self.train_loader.batch_sampler, "batch_size") else 0.0
            )
        )
        record = {"epoch": epoch, "loss": loss_meter.avg, "acc": acc_meter.avg, "lr": lr}
        record.update({name: m.avg for name, m in term_meters.items()})
        if self.writer is not None:
            self.writer.add_scalar("train/loss", loss_meter.avg, epoch)
            self.writer.add_scalar("train/acc", acc_meter.avg, epoch)
            self.writer.add_scalar("train/lr", lr, epoch)
            for name, m in term_meters.items():
                self.writer.add_scalar(f"loss/{name}", m.avg, epoch)
        return record

    def evaluate(self, epoch: int):
        result = evaluate_model(self.cfg, unwrap(self.model), self.dataset, self.device)
        log_metrics(log, result, f"Validation Results - Epoch: {epoch}")
        if self.writer is not None:
            self.writer.add_scalar("val/rank1", float(result.cmc[0]), epoch)
            self.writer.add_scalar("val/mAP", float(result.mAP), epoch)
        return result

    def fit(self):
        cfg = self.cfg
        max_epochs = cfg.SOLVER.MAX_EPOCHS
        result = None
        if self.dist.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(self.output_dir / "tensorboard"))
        if self.start_epoch > max_epochs:
            log.info("training already finished (%d epochs); evaluating the final model", max_epochs)
        for epoch in range(self.start_epoch, max_epochs + 1):
            record = self.train_epoch(epoch)
            evaluate_now = epoch % cfg.SOLVER.EVAL_PERIOD == 0 or epoch == max_epochs
            if evaluate_now and self.dist.is_main:
                result = self.evaluate(epoch)
                record.update({"rank1": float(result.cmc[0]), "mAP": float(result.mAP)})
            self.history.append(record)
            self._save(epoch)
            barrier(self.dist)
        if self.dist.is_main:
            if result is None:
                result = self.evaluate(max_epochs)
            results = evaluate_sets(cfg, unwrap(self.model), self.device, datasets=self.test_sets,
                                    done={cfg.DATASETS.NAMES: result})
            result = next(iter(results.values()))
            weights = str(self.output_dir / f"{cfg.MODEL.NAME}_{max_epochs}.pth")
            path = write_results(str(self.output_dir), result, self.config_file, weights,
                                 extra=per_set_entries(results))
            log.info("results written to %s", path)
            self._pictures(result)
        if self.writer is not None:
            self.writer.close()
        return result

    def _pictures(self, result) -> None:
        from .report import plot_training_curve, write_part_masks_picture, write_retrieval_picture

        plot_training_curve(self.history, self.output_dir / "training_curve.png")
        if self.cfg.TEST.VISUALIZE or self.cfg.DATASETS.NAMES == "synthetic_occ":
            write_retrieval_picture(self.output_dir / "retrieval.png", result)
            write_part_masks_picture(self.output_dir / "part_masks.png", self.cfg, unwrap(self.model),
                                     self.dataset.query, self.device)
