"""Evaluation tests run single-threaded.

Their tensors are small, so threads buy nothing, and on a busy shared machine a second
OpenMP thread that is not scheduled stalls every operation (seen: 50x slower re-ranking).
"""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
