"""Process-level set-up shared by every command: device, CPUs and threads, seeds, logging."""
from __future__ import annotations

import logging
import logging.handlers
import os
import random
import sys
from pathlib import Path

import numpy as np
import torch

from .errors import ConfigError


def resolve_device(device: str, device_id: str = "0", local_rank: int | None = None) -> torch.device:
    """``MODEL.DEVICE`` + ``MODEL.DEVICE_ID`` (or torchrun's local rank) -> a torch.device."""
    if device == "cpu":
        return torch.device("cpu")
    if device != "cuda":
        raise ConfigError(f"MODEL.DEVICE must be 'cuda' or 'cpu', got {device!r}")
    if not torch.cuda.is_available():
        raise ConfigError("MODEL.DEVICE is 'cuda' but no CUDA device is available; pass MODEL.DEVICE cpu")
    if local_rank is not None:
        index = local_rank
    else:
        try:
            index = int(str(device_id).split(",")[0])
        except ValueError:
            raise ConfigError(f"MODEL.DEVICE_ID must be a GPU index such as '0', got {device_id!r}") from None
    if index >= torch.cuda.device_count():
        raise ConfigError(
            f"MODEL.DEVICE_ID {index} does not exist: this machine has {torch.cuda.device_count()} GPU(s)"
        )
    return torch.device("cuda", index)


CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "<quota> <period>" or "max <period>"


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask (taskset, job schedulers), and within a
    container also its CPU quota (cgroup v2 ``cpu.max``, e.g. ``docker run --cpus 2``), rounded up."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return cpus


def set_threads(requested: int = 0) -> int:
    """Set torch's CPU threads: ``requested`` (MODEL.CPU_THREADS), or with 0 the CPUs this process
    may run on shared by the processes torchrun started on this machine. Returns the number set.

    torch's own default counts the machine's cores, which oversubscribes a container limited to
    fewer, or several processes on one machine."""
    processes = max(int(os.environ.get("LOCAL_WORLD_SIZE", "1")), 1)
    threads = int(requested) if int(requested) > 0 else max(1, available_cpus() // processes)
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return threads


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) from one number."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


FILE_ONLY = {"console": False}  # ``extra=`` of a record for the log file only (e.g. the whole config)


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is at the time of the record (it may be swapped later);
    while progress bars are drawn, through tqdm, which clears them, prints the line and draws
    them again below it (a log line never lands in the middle of a bar)."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value):
        pass

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "console", True) and super().filter(record)

    def emit(self, record: logging.LogRecord) -> None:
        tqdm = sys.modules.get("tqdm")
        if tqdm is None or not getattr(tqdm.tqdm, "_instances", None):
            return super().emit(record)
        try:
            tqdm.tqdm.write(self.format(record), file=sys.stdout)
        except Exception:  # noqa: BLE001 - logging's own contract: never raise from a handler
            self.handleError(record)


def setup_logging(main_process: bool = True) -> logging.Logger:
    """Console lines like the reference's on the main process.

    Records are also buffered until :func:`attach_log_file` is called, so the log file is
    only created once the run has got past input validation and still holds every line.
    """
    logger = logging.getLogger("mbf")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    if not main_process:
        logger.addHandler(logging.NullHandler())
        return logger
    console = _StdoutHandler()
    console.setFormatter(_FORMAT)
    logger.addHandler(console)
    logger.addHandler(logging.handlers.MemoryHandler(capacity=100_000, flushLevel=logging.CRITICAL + 1))
    return logger


def attach_log_file(logger: logging.Logger, output_dir: str | os.PathLike, filename: str) -> None:
    """Start writing ``output_dir/filename`` and flush the lines buffered so far into it."""
    buffers = [h for h in logger.handlers if isinstance(h, logging.handlers.MemoryHandler)]
    if not buffers:
        return
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    file_handler = logging.FileHandler(os.path.join(output_dir, filename), mode="a")
    file_handler.setFormatter(_FORMAT)
    for buffer in buffers:
        buffer.setTarget(file_handler)
        buffer.flush()
        logger.removeHandler(buffer)
        buffer.close()
    logger.addHandler(file_handler)


_FORMAT = logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s")
