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

from ..data.loaders import available_cpus
from ..errors import RunFolderError, UnsafeCheckpointError
from .checkpoint import load_file

log = logging.getLogger("mbf.train")

LAST = "last.pth"
RESULTS = "results.json"
CONFIG = "config.yaml"
RUN = "run.json"
ENVIRONMENT = "environment.json"
CHECKPOINT = re.compile(r"^[A-Za-z]\w*_\d+\.pth$")  # <MODEL.NAME>_<epoch>.pth

# What a training run writes; --overwrite removes exactly these (a parse cache stays).
RUN_OUTPUTS = (LAST, RESULTS, CONFIG, RUN, ENVIRONMENT, "train_log.txt", "training_curve.png",
               "retrieval.png", "part_masks.png")
RUN_FOLDERS = ("tensorboard",)

# Keys a resumed run may change: they move files or change bookkeeping, not what is learned.
RESUMABLE_KEYS = frozenset({
    "OUTPUT_DIR",  # the folder may have been moved
    "DATASETS.ROOT_DIR",  # so may the datasets
    "MODEL.DEVICE_ID",
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


def flatten(mapping: dict, prefix: str = "") -> dict[str, Any]:
    """``{"A": {"B": 1}}`` -> ``{"A.B": 1}``; tuples become lists so YAML round trips compare equal."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = list(value) if isinstance(value, tuple) else value
    return flat


def config_mapping(cfg) -> dict[str, Any]:
    """A yacs config as the flat mapping its dump reads back to."""
    return flatten(yaml.safe_load(cfg.dump()))


def differences(saved: dict[str, Any], current: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Keys whose value differs, ``{key: (saved, current)}``. A key only one side knows (a
    config of another version of this package) is not a difference."""
    return {k: (saved[k], current[k]) for k in sorted(saved.keys() & current.keys()) if saved[k] != current[k]}


def _describe(diff: dict[str, tuple[Any, Any]]) -> str:
    return "\n".join(f"    {key}: {old!r} (saved) -> {new!r} (now)" for key, (old, new) in diff.items())


def _load_last(path: Path) -> dict:
    """``last.pth``; one written before its contents were all plain types (it held NumPy RNG
    states) is this run's own file, so it is loaded without the weights-only restriction."""
    try:
        return load_file(path, weights_only=True)
    except UnsafeCheckpointError:
        return load_file(path, weights_only=False)


def saved_config(folder: Path) -> dict[str, Any] | None:
    """The flat config of the run in ``folder``: its config.yaml, else the one in last.pth."""
    text = None
    if (folder / CONFIG).is_file():
        text = (folder / CONFIG).read_text(encoding="utf-8")
    elif (folder / LAST).is_file():
        text = _load_last(folder / LAST).get("config")
    if not text:
        return None
    try:
        return flatten(yaml.safe_load(text) or {})
    except yaml.YAMLError:
        return None


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


def open_run_folder(folder: str | os.PathLike, cfg, resume: bool = False, overwrite: bool = False) -> RunStart:
    """Decide whether this run may use ``folder``; read nothing else and write nothing.

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
            state = _load_last(folder / LAST)
            saved = flatten(yaml.safe_load(state.get("config") or "") or {})
            diff = differences(saved, config_mapping(cfg))
            blocking = {k: v for k, v in diff.items() if k not in RESUMABLE_KEYS}
            if blocking:
                raise RunFolderError(
                    f"cannot resume the run in {folder}: these keys differ from its saved config and change "
                    f"the model, the data or the optimisation:\n{_describe(blocking)}\n"
                    "  resume with the saved values, or set another OUTPUT_DIR to start a new run"
                )
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
            keys = "  its config is not recorded (no config.yaml or last.pth)"
        else:
            diff = differences(saved, config_mapping(cfg))
            keys = (f"  keys that differ from that run:\n{_describe(diff)}" if diff
                    else "  it was started with the same config")
        raise RunFolderError(
            f"OUTPUT_DIR {folder} holds another run ({', '.join(markers)}); nothing was written\n{keys}\n"
            "  to continue that run: add --resume\n"
            "  to keep both: set another OUTPUT_DIR\n"
            "  to replace it: add --overwrite (deletes its checkpoints, results, logs and pictures)"
        )
    return RunStart(folder, False)


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


def _write_json(path: Path, payload: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_run_records(folder: str | os.PathLike, cfg, env: dict[str, Any], config_file: str = "",
                      start: RunStart | None = None) -> None:
    """``config.yaml``, ``run.json`` (one more invocation) and ``environment.json`` in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG).write_text(cfg.dump(), encoding="utf-8")
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
    _write_json(folder / RUN, record)
    _write_json(folder / ENVIRONMENT, env)
