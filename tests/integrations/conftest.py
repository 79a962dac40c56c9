"""The retrieval tests' tiny models (tests/retrieval/conftest.py), for the integrations."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("retrieval_conftest", Path(__file__).parents[1] / "retrieval" / "conftest.py")
_retrieval = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_retrieval)
Tiny = _retrieval.Tiny


@pytest.fixture
def tiny(tmp_path) -> Tiny:
    return Tiny(tmp_path)


@pytest.fixture(autouse=True)
def one_thread(one_torch_thread):
    """Every test here runs on one torch thread (tests/conftest.py)."""
