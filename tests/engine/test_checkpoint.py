"""Checkpoints are written atomically and read back with clear errors."""
import pytest

from mbf.engine.checkpoint import atomic_save, load_file
from mbf.errors import CheckpointError


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("boom while writing")


def test_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "last.pth"
    atomic_save({"epoch": 1}, path)
    with pytest.raises(RuntimeError, match="boom"):
        atomic_save({"epoch": 2, "bad": Unpicklable()}, path)
    assert load_file(path) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]  # no temporary file left behind


def test_missing_and_corrupt_files_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="not found.*nothing.pth"):
        load_file(tmp_path / "nothing.pth")
    bad = tmp_path / "corrupt.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt.pth"):
        load_file(bad)
