"""Evaluation tests run single-threaded.

Their tensors are small, so threads buy nothing, and on a busy shared machine a second
OpenMP thread that is not scheduled stalls every operation (seen: 50x slower re-ranking).
"""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def one_thread(one_torch_thread):
    """Every test here runs on one torch thread (tests/conftest.py)."""
