"""Shared test plumbing: golden files from the reference implementation.

The golden files live in ``../shared/fixtures`` beside the checkout (override with
``MBF_FIXTURES``). A plain clone has none: tests that need them skip with a visible reason,
unless ``MBF_REQUIRE_FIXTURES=1`` (set by ``.ci/run``) turns the skip into a failure.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("MBF_FIXTURES", REPO.parent / "shared" / "fixtures"))
REQUIRE_FIXTURES = os.environ.get("MBF_REQUIRE_FIXTURES", "") not in ("", "0")

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@lru_cache(maxsize=None)
def _load(name: str):
    return torch.load(FIXTURES / name, map_location="cpu", weights_only=True)


@pytest.fixture(scope="session")
def golden():
    """``golden(name)`` -> the loaded golden file, or skip/fail when it is not there."""

    def load(name: str):
        path = FIXTURES / name
        if not path.is_file():
            msg = f"golden file {path} not found (set MBF_FIXTURES to the shared/fixtures folder)"
            if REQUIRE_FIXTURES:
                pytest.fail(msg + "; MBF_REQUIRE_FIXTURES is set, so this is an error")
            pytest.skip(msg)
        return _load(name)

    return load


def relative_error(actual, expected) -> float:
    """||actual - expected|| / ||expected||, the fixtures README's measure for features."""
    actual = torch.as_tensor(actual, dtype=torch.float64)
    expected = torch.as_tensor(expected, dtype=torch.float64)
    assert actual.shape == expected.shape, f"shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    denom = expected.norm().item()
    diff = (actual - expected).norm().item()
    return diff / denom if denom > 0 else diff


@pytest.fixture(scope="session")
def rel_err():
    """The relative-error measure of the fixtures README, as a fixture."""
    return relative_error


@pytest.fixture(autouse=True)
def isolated_mbf_logging():
    """Each test starts with the ``mbf`` logger as Python made it: a command line run by an earlier
    test configures it (its own handlers, no propagation), and that must not reach the next test."""
    import logging

    logger = logging.getLogger("mbf")
    level, propagate, handlers = logger.level, logger.propagate, list(logger.handlers)
    yield
    for handler in list(logger.handlers):
        if handler not in handlers:
            logger.removeHandler(handler)
            handler.close()
    for handler in handlers:
        if handler not in logger.handlers:
            logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = propagate


@pytest.fixture
def mbf_log(caplog):
    """caplog that also sees the ``mbf`` loggers' records after the command line's logging set-up
    (which stops them from propagating to the root logger, where caplog listens)."""
    import logging

    logger = logging.getLogger("mbf")
    logger.addHandler(caplog.handler)
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.INFO)
    logger.propagate = False  # each record once, through the handler above
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)
        logger.setLevel(level)
        logger.propagate = propagate


@pytest.fixture
def one_torch_thread():
    """Small tensors: a second OpenMP thread buys nothing and stalls on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def benchmark_script():
    """``benchmark_script("gpu_check")`` -> benchmarks/gpu_check.py loaded as a module."""
    import importlib.util

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
