"""Shared plumbing of the reliability tests: the tiny synthetic set and models of tests/engine
and tests/retrieval, a private copy of the set for tests that damage it, and a planted pickle."""
from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..engine.conftest import TINY_CONFIG, small_synthetic_root, tiny_cfg, tiny_opts, tiny_overrides  # noqa: F401
from ..retrieval.conftest import Tiny, one_thread, tiny  # noqa: F401


@pytest.fixture
def own_synthetic_root(small_synthetic_root, tmp_path) -> Path:
    """A copy of the tiny synthetic datasets folder that a test may change."""
    root = tmp_path / "own_datasets"
    shutil.copytree(small_synthetic_root, root)
    return root


class _Payload:
    """Unpickling this object creates ``marker``: proof that a loader ran code from a file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


class Bomb:
    """Plants files whose unpickling would create ``marker`` (torch's zip format and a bare pickle)."""

    def __init__(self, tmp_path: Path):
        self.marker = tmp_path / "PAYLOAD_RAN"

    def torch_file(self, path: Path, wrap: bool = True) -> Path:
        """A torch.save zip whose pickle holds the payload (inside a dict, as checkpoints are)."""
        import torch

        path.parent.mkdir(parents=True, exist_ok=True)
        obj = {"model": _Payload(self.marker), "epoch": 1, "config": ""} if wrap else _Payload(self.marker)
        torch.save(obj, path)
        return path

    def raw_pickle(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(_Payload(self.marker)))
        return path

    @property
    def ran(self) -> bool:
        return self.marker.exists()


@pytest.fixture
def bomb(tmp_path) -> Bomb:
    return Bomb(tmp_path)


@pytest.fixture
def lock_holder():
    """``hold(lock_file)`` -> a second process holding that lock until the test ends."""
    procs = []
    code = ("import sys; from mbf.files import FolderLock; lock = FolderLock(sys.argv[1], 'x').acquire(); "
            "print('held', flush=True); sys.stdin.read()")

    def hold(lock_file: Path) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", code, str(lock_file)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "held"  # it holds the lock now
        return proc

    yield hold
    for proc in procs:
        proc.stdin.close()  # it exits; the system releases its lock
        proc.wait(timeout=60)
