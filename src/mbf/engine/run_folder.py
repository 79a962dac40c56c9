"""A run's folder (OUTPUT_DIR): who may write into it, and the records that describe the run.

A folder *holds a run* once that run wrote a checkpoint or results (``last.pth``,
``<model>_<epoch>.pth``, ``results.json``). A new run refuses such a folder unless told to
replace it; a folder whose run died before its first checkpoint may be reused. A resumed run
must match the saved config in every key that changes the model, the data or the
optimisation (:data:`RESUMABLE_KEYS` may differ).

Every run writes, beside its outputs:

- ``config.yaml``: the full config it ran with;
- ``run.json``: the project version, git commit when available, and one entry per start or
  resume (command line, working directory, start time, start epoch, the keys a resume changed);
- ``environment.json``: Python, torch, torchvision, timm, CUDA, cuDNN, GPUs, precision and world
  size of the latest start — what to compare first when numbers differ across machines.
"""
from __future__ import annotations

import datetime as _dt
import itertools
import json
import logging
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
import yaml

from ..config import differences, flatten
from ..errors import BusyError, CheckpointError, OutputError, RunFolderError, UnsafeCheckpointError
from ..runtime import available_cpus
from ..files import FolderLock, format_bytes, free_bytes, remove_stale_temporaries, write_json, write_text
from .checkpoint import load_file

log = logging.getLogger("mbf.train")

LAST = "last.pth"
RESULTS = "results.json"
CONFIG = "config.yaml"
RUN = "run.json"
ENVIRONMENT = "environment.json"
CHECKPOINT = re.compile(r"^[A-Za-z]\w*_\d+\.pth$")  # <MODEL.NAME>_<epoch>.pth
# temporaries of the run's files as earlier versions named them (mkstemp "last.pth.k3j9.tmp", "results.json.tmp")
LEGACY_TEMPORARY = re.compile(r"^(last\.pth|[A-Za-z]\w*_\d+\.pth)\.\w+\.tmp$|^(results|run|environment)\.json\.tmp$")

# What a training run writes; --overwrite removes exactly these (a parse cache stays).
RUN_OUTPUTS = (LAST, RESULTS, CONFIG, RUN, ENVIRONMENT, "train_log.txt", "training_curve.png",
               "retrieval.png", "part_masks.png")
RUN_FOLDERS = ("tensorboard",)

# Keys a resumed run may change: they move files or change bookkeeping, not what is learned.
RESUMABLE_KEYS = frozenset({
    "OUTPUT_DIR",  # the folder may have been moved
    "DATASETS.ROOT_DIR",  # so may the datasets
    "MODEL.DEVICE_ID", "MODEL.CPU_THREADS",
    "MODEL.PRETRAIN_PATH", "MODEL.PRETRAIN_CHOICE",  # read only when a run starts; a resume loads last.pth
    "DATALOADER.NUM_WORKERS",
    "SOLVER.MAX_EPOCHS",  # extend a run: the cosine schedule then spans the new length
    "SOLVER.LOG_PERIOD", "SOLVER.EVAL_PERIOD", "SOLVER.CHECKPOINT_PERIOD", "SOLVER.RESUME",
    "TEST.WEIGHT", "TEST.IMS_PER_BATCH", "TEST.DIST_CHUNK", "TEST.VISUALIZE", "TEST.DIST_MAT", "TEST.EVAL",
    "HUMAN_PARSING.CACHE_DIR",  # cache folders are keyed by the parser's content hash
    "HUMAN_PARSING.BATCH_SIZE",  # `mbf parse` only
})


def run_markers(folder: Path) -> list[str]:
    """The files in ``folder`` that show a run got as far as a checkpoint or results."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if p.is_file() and (p.name in (LAST, RESULTS) or CHECKPOINT.match(p.name)))


def _mapping(text) -> dict:
    """The YAML mapping of a config text stored in last.pth ({} when there is none)."""
    try:
        mapping = yaml.safe_load(text or "")
    except yaml.YAMLError:
        mapping = None
    return mapping if isinstance(mapping, dict) else {}


def _describe(diff: dict[str, tuple[Any, Any]]) -> str:
    return "\n".join(f"    {key}: {old!r} (saved) -> {new!r} (now)" for key, (old, new) in diff.items())


# early development versions stored NumPy random states in last.pth, which the safe loader refuses
OLD_LAST_ADVICE = ("a last.pth of an early development version of mbf stored NumPy random states; convert it once, "
                   "still weights-only with NumPy's arrays alone allowed: python -c \"import numpy, torch; "
                   "p = '{path}'; a = numpy.zeros(1, numpy.uint32); torch.serialization.add_safe_globals("
                   "[a.__reduce__()[0], numpy.ndarray, numpy.dtype, type(a.dtype)]); "
                   "s = torch.load(p, weights_only=True); s.pop('rng', None); torch.save(s, p)\"")


def load_last(path: Path) -> dict:
    """``last.pth``, read with the weights-only loader only (a planted pickle never runs). A file
    that needs NumPy objects is refused with the way to convert an early version's state on
    purpose; one that needs anything else was not written by mbf and gets no such advice."""
    try:
        state = load_file(path, f"training state {path.name}")
    except UnsafeCheckpointError as exc:
        if exc.needs and exc.needs.startswith("numpy."):
            raise UnsafeCheckpointError(f"{exc}; {OLD_LAST_ADVICE.format(path=path)}") from None
        raise UnsafeCheckpointError(f"{exc}; no last.pth written by mbf holds that: do not load this file") from None
    if not isinstance(state, dict) or "epoch" not in state or "model" not in state:
        raise CheckpointError(f"{path} is not a training state written by mbf train (no epoch and model)")
    return state


def saved_config(folder: Path) -> dict[str, Any] | None:
    """The flat config of the run in ``folder``: its config.yaml, else the one in last.pth; None
    when neither can be read (the folder is only being described, so that is not an error)."""
    text = None
    try:
        if (folder / CONFIG).is_file():
            text = (folder / CONFIG).read_text(encoding="utf-8")
        elif (folder / LAST).is_file():
            text = load_last(folder / LAST).get("config")
    except (OSError, UnicodeDecodeError, CheckpointError):
        return None
    if not text:
        return None
    try:
        mapping = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return flatten(mapping) if isinstance(mapping, dict) else None


@dataclass
class RunStart:
    """What :func:`open_run_folder` found: the state to resume from (None: a new run) and the
    resumable keys that differ from the saved run."""

    folder: Path
    resume: bool
    state: dict | None = None
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def start_epoch(self) -> int:
        return int(self.state["epoch"]) + 1 if self.state else 1


def open_run_folder(folder: str | os.PathLike, config: dict[str, Any], max_epochs: int, resume: bool = False,
                    overwrite: bool = False) -> RunStart:
    """Decide whether this run may use ``folder``; read nothing else and write nothing.

    ``config``: the run's flat configuration (:func:`mbf.config.config_mapping`), compared with
    the saved run's; ``max_epochs``: the run's last epoch (a resume may not start beyond it).

    Raises :class:`RunFolderError` when the folder holds another run (no ``--resume``, no
    ``--overwrite``), when ``--resume`` finds no ``last.pth`` but another run's files, or when a
    resume would change a key outside :data:`RESUMABLE_KEYS`.
    """
    folder = Path(folder)
    markers = run_markers(folder)
    if resume and overwrite:
        raise RunFolderError("--resume and --overwrite exclude each other: continue the run in "
                             f"{folder} or replace it, not both")
    if resume:
        if (folder / LAST).is_file():
            state = load_last(folder / LAST)
            saved = flatten(_mapping(state.get("config")))
            diff = differences(saved, config)
            blocking = {k: v for k, v in diff.items() if k not in RESUMABLE_KEYS}
            if blocking:
                raise RunFolderError(
                    f"cannot resume the run in {folder}: these keys differ from its saved config and change "
                    f"the model, the data or the optimisation:\n{_describe(blocking)}\n"
                    "  resume with the saved values, or set another OUTPUT_DIR to start a new run"
                )
            epochs = int(max_epochs)
            if int(state["epoch"]) > epochs:
                raise RunFolderError(
                    f"cannot resume the run in {folder}: its {LAST} is at epoch {int(state['epoch'])}, beyond "
                    f"SOLVER.MAX_EPOCHS {epochs}; resume with SOLVER.MAX_EPOCHS {int(state['epoch'])} or more")
            return RunStart(folder, True, state, diff)
        if markers:
            raise RunFolderError(
                f"--resume: no {LAST} in {folder}, but it holds another run's files ({', '.join(markers)}); "
                "nothing was written\n  set another OUTPUT_DIR to start a new run, or --overwrite to replace it"
            )
        log.warning("--resume: no %s in %s; nothing to resume, starting from epoch 1", LAST, folder)
        return RunStart(folder, False)
    if markers and not overwrite:
        saved = saved_config(folder)
        if saved is None:
            keys = "  its config cannot be read (no readable config.yaml or last.pth)"
        else:
            diff = differences(saved, config)
            keys = (f"  keys that differ from that run:\n{_describe(diff)}" if diff
                    else "  it was started with the same config")
        raise RunFolderError(
            f"OUTPUT_DIR {folder} holds another run ({', '.join(markers)}); nothing was written\n{keys}\n"
            "  to continue that run: add --resume\n"
            "  to keep both: set another OUTPUT_DIR\n"
            "  to replace it: add --overwrite (deletes its checkpoints, results, logs and pictures)"
        )
    return RunStart(folder, False)


def remove_run_temporaries(folder: Path) -> list[str]:
    """Delete the temporary files a killed run left in ``folder`` (the caller holds its lock)."""
    removed = remove_stale_temporaries(folder)
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.is_file() and LEGACY_TEMPORARY.match(path.name):
                path.unlink()
                removed.append(path.name)
    return removed


def clear_run(folder: Path) -> list[str]:
    """Delete what a training run wrote in ``folder`` (for ``--overwrite``); other files stay."""
    removed = []
    if not folder.is_dir():
        return removed
    for path in sorted(folder.iterdir()):
        if path.is_file() and (path.name in RUN_OUTPUTS or CHECKPOINT.match(path.name)):
            path.unlink()
            removed.append(path.name)
        elif path.is_dir() and path.name in RUN_FOLDERS:
            shutil.rmtree(path)
            removed.append(path.name + "/")
    return removed


def check_free_space(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                     weight_files: int) -> None:
    """Refuse to start when ``folder``'s disk cannot hold one ``last.pth`` and one weights file;
    warn when it cannot hold every checkpoint the run will write (``weight_files`` weights files).

    A checkpoint's size is estimated from the tensors it will hold: the weights, and for
    ``last.pth`` also the optimiser's per-parameter state (two moments for Adam/AdamW, a momentum
    buffer for SGD), which the optimiser creates only at its first step.
    """
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    moments = 2 if isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)) else \
        int(any(g.get("momentum", 0) for g in optimizer.param_groups))
    last = weights + moments * trainable
    free = free_bytes(folder)
    if free is None:
        return
    if free < last + weights:
        raise OutputError(f"OUTPUT_DIR {folder}: {format_bytes(free)} free, but one checkpoint needs about "
                          f"{format_bytes(last + weights)} ({LAST} {format_bytes(last)} and the weights "
                          f"{format_bytes(weights)}); free some space or set another OUTPUT_DIR")
    needed = last + weight_files * weights
    if free < needed:
        log.warning("OUTPUT_DIR %s: %s free, the run will write about %s (%s and %d weights files); it stops with "
                    "an error when the disk is full, keeping the last complete checkpoint", folder,
                    format_bytes(free), format_bytes(needed), LAST, weight_files)


# ---------------------------------------------------------------------------------- records
def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_revision() -> dict[str, Any]:
    """Commit and dirty flag of the checkout this package runs from, when it is one."""
    repo = Path(__file__).resolve().parents[3]
    if not (repo / ".git").exists() or shutil.which("git") is None:
        return {}
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"git_commit": commit, "git_dirty": bool(status.strip())}


def environment(device: torch.device, precision=None, world_size: int = 1) -> dict[str, Any]:
    """The software and hardware a run used (``environment.json``)."""
    cuda = torch.cuda.is_available()
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "timm": _version("timm"),
        "numpy": _version("numpy"),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "gpu_count": len(gpus),
        "gpus": gpus,
        "device": str(device),
        "amp": bool(precision is not None and precision.enabled),
        "amp_dtype": precision.name if precision is not None else "float32",
        "world_size": int(world_size),
        "cpus_available": available_cpus(),
        "torch_threads": torch.get_num_threads(),
    }


def write_run_records(folder: str | os.PathLike, config_text: str, env: dict[str, Any], config_file: str = "",
                      start: RunStart | None = None) -> None:
    """``config.yaml``, ``run.json`` (one more invocation) and ``environment.json`` in ``folder``."""
    folder = Path(folder)
    write_text(folder / CONFIG, config_text)
    revision = git_revision()
    invocation = {
        "command": shlex.join(getattr(sys, "orig_argv", sys.argv)),
        "cwd": os.getcwd(),
        "start_time": _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds"),
        "version": _version("mbf-reid"),
        **revision,
    }
    if start is not None:
        invocation.update(resume=start.resume, start_epoch=start.start_epoch,
                          changed_keys={k: {"saved": old, "now": new} for k, (old, new) in start.changed.items()})
    record: dict[str, Any] = {}
    if start is not None and start.resume and (folder / RUN).is_file():
        try:
            record = json.loads((folder / RUN).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            record = {}
    if not record:
        record = {"project": "mbf-reid", "version": invocation["version"], **revision,
                  "config_file": config_file, "invocations": []}
    record.setdefault("invocations", []).append(invocation)
    write_json(folder / RUN, record)
    write_json(folder / ENVIRONMENT, env)


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
