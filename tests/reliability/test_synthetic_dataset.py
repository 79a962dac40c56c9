"""Generated data never deletes what it did not write: a synthetic dataset that differs from its
manifest is refused file by file, regenerated only on purpose (with its own seed and options),
an interrupted generation is finished with its recorded options, and one generator per folder."""
from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from mbf.cli import main
from mbf.config import load_config
from mbf import synthetic as syn
from mbf.data.build import SYNTHETIC, load_test_set
from mbf.errors import BusyError, DatasetError
from mbf.files import LOCK_NAME, FolderLock, temporary_path

from ..engine.conftest import SMALL_SET, TINY_CONFIG, tiny_overrides

USER_FILE = "0001_c1s1_000001_00.jpg"  # named like a generated image, as a user's own image may be


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("mbf synth: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def dataset(tmp_path) -> Path:
    """A small dataset made with non-default options (2 cameras, 9 identities) and seed 5."""
    root = tmp_path / "datasets" / syn.DATASET_DIR_NAME
    syn.generate(root, seed=5, **SMALL_SET)
    return root


def _interrupt(root: Path, monkeypatch, after: int = 10, **options) -> None:
    """Start a generation into ``root`` that fails after ``after`` images, as a killed one stops."""
    real, saved = syn.writer._save, []

    def failing(*args, **kwargs):
        if len(saved) == after:
            raise KeyboardInterrupt
        saved.append(real(*args, **kwargs))

    monkeypatch.setattr(syn.writer, "_save", failing)
    with pytest.raises(KeyboardInterrupt):
        syn.generate(root, **options)
    monkeypatch.setattr(syn.writer, "_save", real)
    assert syn.survey_dataset(root).state == "unfinished"


def test_a_users_file_in_query_makes_testing_refuse_naming_it_and_every_file_stays(dataset, tmp_path):
    (dataset / syn.QUERY_DIR / USER_FILE).write_bytes(b"the user's own image")
    before = _files(dataset)
    cfg = load_config(TINY_CONFIG, tiny_overrides(dataset.parent, tmp_path / "run"))
    assert cfg.DATASETS.NAMES == SYNTHETIC
    with pytest.raises(DatasetError) as caught:
        load_test_set(cfg, SYNTHETIC, verbose=False)
    message = str(caught.value)
    assert "\n" not in message and str(dataset) in message
    assert f"{syn.QUERY_DIR}/{USER_FILE}" in message and "1 file the generator did not write" in message
    assert "move the files" in message
    assert _files(dataset) == before  # the user's file and every generated file, byte for byte


def test_a_removed_generated_image_is_named_and_the_set_is_not_regenerated(dataset):
    victim = min((dataset / syn.GALLERY_DIR).glob("*.jpg"))
    victim.unlink()
    before = _files(dataset)
    with pytest.raises(DatasetError) as caught:
        syn.ensure_dataset(dataset)
    message = str(caught.value)
    assert f"1 generated file missing: {syn.GALLERY_DIR}/{victim.name}" in message
    assert syn.regenerate_command(dataset) in message and "--force" in message
    assert _files(dataset) == before


def test_many_differing_files_are_counted_and_the_first_few_named(dataset):
    for i in range(8):
        (dataset / syn.MASK_DIR / syn.TRAIN_DIR / f"extra{i}.png").write_bytes(b"x")
    problems = syn.verify(dataset)
    assert problems == [f"8 files the generator did not write: {syn.MASK_DIR}/{syn.TRAIN_DIR}/extra0.png, "
                        + ", ".join(f"{syn.MASK_DIR}/{syn.TRAIN_DIR}/extra{i}.png" for i in range(1, 5))
                        + " and 3 more"]


def test_force_regenerates_with_the_manifests_own_seed_and_options(dataset):
    old = syn.read_manifest(dataset)
    before = _files(dataset)
    min((dataset / syn.QUERY_DIR).glob("*.jpg")).unlink()
    assert main(["synth", "--out", str(dataset), "--force"]) == 0
    new = syn.read_manifest(dataset)
    assert (new.seed, new.options) == (old.seed, old.options) and new.options["num_cameras"] == 2
    assert _files(dataset) == before  # same seed and options, same bytes

    # an option given on the command line replaces the manifest's; the others stay
    assert main(["synth", "--out", str(dataset), "--force", "--seed", "6"]) == 0
    changed = syn.read_manifest(dataset)
    assert changed.seed == 6 and changed.options == old.options


def test_the_regenerate_command_reproduces_the_manifest(dataset, tmp_path):
    before = _files(dataset)
    command = shlex.split(syn.regenerate_command(dataset))
    assert command[:2] == ["mbf", "synth"] and command[-1] == "--force"
    assert main(["synth", "--out", str(dataset), "--force", "--seed", "1", "--cameras", "3"]) == 0
    assert main(command[1:]) == 0
    assert _files(dataset) == before


def test_force_with_a_foreign_file_refuses_and_deletes_nothing(dataset, capsys):
    (dataset / syn.MASK_DIR / syn.QUERY_DIR / "notes.txt").write_text("mine")
    before = _files(dataset)
    assert main(["synth", "--out", str(dataset), "--force"]) == 2
    err = _one_line_error(capsys)
    assert f"{syn.MASK_DIR}/{syn.QUERY_DIR}/notes.txt" in err and "nothing was deleted" in err
    assert _files(dataset) == before


def test_synth_without_force_does_not_repair_a_changed_set(dataset, capsys):
    min((dataset / syn.TRAIN_DIR).glob("*.jpg")).unlink()
    before = _files(dataset)
    assert main(["synth", "--out", str(dataset)]) == 2
    assert "regenerate it on purpose with: mbf synth" in _one_line_error(capsys)
    assert _files(dataset) == before


def test_an_interrupted_generation_is_finished_by_ensure_dataset_with_its_recorded_options(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    _interrupt(root, monkeypatch, seed=4, **SMALL_SET)
    stale = temporary_path(root / syn.QUERY_DIR / USER_FILE)  # what a killed writer leaves
    stale.write_bytes(b"half an image")
    summary = syn.ensure_dataset(root)  # the engine's seed 0 and default options: the recorded ones win
    assert summary.seed == 4 and summary.options == syn.make_options(**SMALL_SET).to_dict()
    clean = tmp_path / "clean"
    syn.generate(clean, seed=4, **SMALL_SET)
    assert _files(root) == _files(clean)


def test_an_interrupted_generation_holding_a_users_file_is_not_finished(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    _interrupt(root, monkeypatch, seed=4, **SMALL_SET)
    (root / syn.GALLERY_DIR / "mine.jpg").write_bytes(b"mine")
    before = _files(root)
    with pytest.raises(DatasetError, match=f"1 file the generator did not write: {syn.GALLERY_DIR}/mine.jpg"):
        syn.ensure_dataset(root)
    assert _files(root) == before


def test_an_unfinished_generation_without_recorded_options_is_refused_with_the_command(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    _interrupt(root, monkeypatch, seed=4, **SMALL_SET)
    (root / ".synthetic_incomplete").write_text("generation in progress or interrupted\n")  # an older mbf's marker
    before = _files(root)
    with pytest.raises(DatasetError, match="does not record its seed and options.*mbf synth --out .* --force"):
        syn.ensure_dataset(root, seed=4)
    assert _files(root) == before
    syn.generate(root, seed=4, overwrite=True, **SMALL_SET)  # on purpose: its files are this generation's
    assert syn.dataset_status(root) == "complete"


def test_a_held_lock_makes_a_second_generation_fail_naming_the_pid(tmp_path, capsys):
    root = tmp_path / "ds"
    with FolderLock.for_folder(root, "a test holder"):
        with pytest.raises(BusyError, match=f"synthetic dataset {root} is in use by another process "
                                            f"\\(PID {os.getpid()}, started "):
            syn.generate(root, seed=0, **SMALL_SET)
        assert main(["synth", "--out", str(root), "--ids", "9"]) == 2
        assert f"PID {os.getpid()}" in _one_line_error(capsys)
        assert sorted(p.name for p in root.iterdir()) == [LOCK_NAME]  # nothing written
    syn.generate(root, seed=0, **SMALL_SET)
    with FolderLock.for_folder(root, "a reader"):  # a complete set is read without the lock
        assert syn.verify(root) == [] and syn.ensure_dataset(root).seed == 0
    assert not (root / LOCK_NAME).exists()
