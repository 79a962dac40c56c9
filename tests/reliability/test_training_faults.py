"""Training survives kills, full disks, a second process and bad settings: nothing lost or mixed,
and every fault is one line naming the file or key."""
from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mbf.cli import main
from mbf.engine import checkpoint
from mbf.engine.checkpoint import load_file
from mbf.files import LOCK_NAME, FolderLock, is_temporary

from ..engine.conftest import Terminal
from .conftest import TINY_CONFIG

REPO = Path(__file__).resolve().parents[2]
KILL_AT = Path(__file__).with_name("kill_at.py")


def folder_of(opts: list[str]) -> Path:
    return Path(opts[opts.index("OUTPUT_DIR") + 1])


def set_key(opts: list[str], key: str, value: str) -> list[str]:
    opts = list(opts)
    opts[opts.index(key) + 1] = value
    return opts


def train(opts: list[str], *switches: str) -> list[str]:
    return ["train", "--config_file", str(TINY_CONFIG), *opts, *switches]


def run_killed(rule: tuple[str, str, int], argv: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(KILL_AT), *map(str, rule), "--", *argv], cwd=REPO, env=env,
                          capture_output=True, text=True)


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def cli(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_kills_at_any_moment_resume_to_the_uninterrupted_weights_with_every_named_file(tiny_opts):
    """Killed mid-epoch, inside last.pth and the final weights (half-written temporaries), between
    the weights and last.pth, and after the last checkpoint before the results: each time
    ``--resume`` continues, and the end equals a run that was never interrupted."""
    base = set_key(tiny_opts(3, "straight"), "SOLVER.CHECKPOINT_PERIOD", "2")  # weights at epochs 2 and 3
    straight = run_killed(("none", "-", 0), train(base))
    assert straight.returncode == 0, straight.stderr[-2000:]

    opts = set_key(base, "OUTPUT_DIR", str(folder_of(base).with_name("killed")))
    out = folder_of(opts)
    rng = np.random.default_rng(23)
    plan = [("step", "-", int(rng.integers(1, 4))),  # a random batch of epoch 1: nothing saved yet
            ("write", "last.pth", int(rng.integers(1, 4))),  # inside epoch 1's last.pth: a temporary left
            ("replaced", "transformer_2.pth", 1),  # epoch 2's weights saved, its last.pth not yet
            ("write", "transformer_3.pth", 2),  # inside the final weights
            ("replaced", "last.pth", 1)]  # every checkpoint saved, no results yet
    leftovers = []
    for rule in plan:
        killed = run_killed(rule, train(opts, "--resume"))
        assert killed.returncode == -9, (rule, killed.stderr[-2000:])
        leftovers += [p.name for p in out.iterdir() if is_temporary(p.name)]
    assert leftovers, "no kill happened inside a write"
    finished = run_killed(("none", "-", 0), train(opts, "--resume"))
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "training already finished" in finished.stdout + finished.stderr

    report = json.loads((out / "results.json").read_text())
    assert Path(report["weights"]).is_file()
    assert not [p.name for p in out.iterdir() if is_temporary(p.name)]
    assert load_file(out / "last.pth")["epoch"] == 3
    straight_dir = folder_of(base)
    for name in ("transformer_2.pth", "transformer_3.pth"):
        assert states_equal(load_file(straight_dir / name), load_file(out / name)), name
    expected = json.loads((straight_dir / "results.json").read_text())
    assert (report["rank1"], report["mAP"]) == (expected["rank1"], expected["mAP"])
    invocations = json.loads((out / "run.json").read_text())["invocations"]
    assert [i["start_epoch"] for i in invocations[-2:]] == [3, 4]  # killed in epoch 3, then only evaluated


def test_final_weights_missing_beside_a_finished_last_pth_are_written_again_on_resume(tiny_opts, capsys):
    """A run killed by an earlier version while writing its final weights (after last.pth)."""
    opts = tiny_opts(1, "run")
    assert main(train(opts)) == 0
    out = folder_of(opts)
    saved = load_file(out / "transformer_1.pth")
    (out / "transformer_1.pth").unlink()
    (out / "results.json").unlink()
    assert main(train(opts, "--resume")) == 0
    assert states_equal(saved, load_file(out / "transformer_1.pth"))
    assert Path(json.loads((out / "results.json").read_text())["weights"]).is_file()
    modes = {name: (out / name).stat().st_mode & 0o777 for name in
             ("last.pth", "transformer_1.pth", "results.json", "config.yaml", "training_curve.png")}
    assert len(set(modes.values())) == 1, modes  # checkpoints as readable as the other run files


def test_resume_and_overwrite_remove_the_temporaries_of_a_killed_run(tiny_opts, capsys):
    opts = tiny_opts(1, "run")
    assert main(train(opts)) == 0
    out = folder_of(opts)
    planted = [out / ".last.pth.tmp-4242-abcdef", out / "last.pth.k3j9x1.tmp", out / "results.json.tmp"]
    for path in planted:
        path.write_bytes(b"half a checkpoint")
    assert main(train(set_key(opts, "SOLVER.MAX_EPOCHS", "2"), "--resume")) == 0
    assert not any(p.exists() for p in planted)
    for path in planted:
        path.write_bytes(b"half a checkpoint")
    assert main(train(opts, "--overwrite")) == 0
    assert not any(p.exists() for p in planted)


def test_a_second_run_into_a_folder_in_use_is_refused_naming_the_holder(tiny_opts, capsys, lock_holder):
    opts = tiny_opts(1, "busy")
    out = folder_of(opts)
    holder = lock_holder(out / LOCK_NAME)
    for seed in ("1234", "99"):  # the same run and another seed: both refused before anything is written
        code, err = cli(train(opts + ["SOLVER.SEED", seed]), capsys)
        line = one_error_line(err)
        assert code == 2 and f"PID {holder.pid}" in line and "started" in line and str(out) in line
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]
    holder.kill()
    holder.wait()
    assert main(train(opts)) == 0  # the holder died: its lock went with it


def test_two_evaluations_of_one_weights_file_write_into_separate_folders(tiny_opts, capsys):
    opts = tiny_opts(1, "run")
    assert main(train(opts)) == 0
    out = folder_of(opts)
    weights = str(out / "transformer_1.pth")
    with FolderLock.for_folder(out / "test" / "transformer_1", "another evaluation"):
        assert main(["test", "--config_file", str(TINY_CONFIG), *opts, "TEST.WEIGHT", weights]) == 0
    assert (out / "test" / "transformer_1_2" / "results.json").is_file()
    assert not (out / "test" / "transformer_1" / "results.json").exists()


class FullDisk:
    """Makes the checkpoint writer fail as a full disk does, from the ``after``-th file on."""

    def __init__(self, monkeypatch, after: int):
        self.files = 0
        write = checkpoint._RecordingWriter.write
        init = checkpoint._RecordingWriter.__init__

        def counting_init(writer, fh):
            init(writer, fh)
            self.files += 1

        def failing_write(writer, data):
            if self.files >= after:
                raise OSError(errno.ENOSPC, "No space left on device")
            return write(writer, data)

        monkeypatch.setattr(checkpoint._RecordingWriter, "__init__", counting_init)
        monkeypatch.setattr(checkpoint._RecordingWriter, "write", failing_write)


def test_a_full_disk_stops_training_with_one_line_and_keeps_the_last_checkpoint(tiny_opts, capsys, monkeypatch):
    opts = tiny_opts(2, "full")
    out = folder_of(opts)
    FullDisk(monkeypatch, after=2)  # epoch 1's last.pth is written, epoch 2's is not
    code, err = cli(train(opts), capsys)
    line = one_error_line(err)
    assert code == 2 and "cannot write" in line and "transformer_2.pth: the disk is full" in line and "free in" in line
    assert "last.pth of epoch 1 is the last complete checkpoint" in line and "--resume" in line
    assert load_file(out / "last.pth")["epoch"] == 1
    assert not [p.name for p in out.iterdir() if is_temporary(p.name)]
    monkeypatch.undo()
    assert main(train(opts, "--resume")) == 0 and load_file(out / "last.pth")["epoch"] == 2


@pytest.mark.parametrize("key, value, expected", [
    ("SOLVER.CHECKPOINT_PERIOD", "0", "SOLVER.CHECKPOINT_PERIOD must be an integer >= 1"),
    ("SOLVER.EVAL_PERIOD", "0", "SOLVER.EVAL_PERIOD must be an integer >= 1"),
    ("SOLVER.MAX_EPOCHS", "0", "SOLVER.MAX_EPOCHS must be an integer >= 1"),
    ("MODEL.STRIDE_SIZE", "[32, 32]", "MODEL.STRIDE_SIZE [32, 32] is larger than the 16-pixel patch"),
    ("INPUT.SIZE_TRAIN", "[70, 30]", "INPUT.SIZE_TRAIN [70, 30] is not covered by 16-pixel patches"),
])
def test_settings_that_cannot_work_are_refused_before_anything_is_written(tiny_opts, capsys, key, value, expected):
    opts = tiny_opts(1, "bad")
    if key == "INPUT.SIZE_TRAIN":
        opts = set_key(set_key(opts, "INPUT.SIZE_TEST", value), key, value)
    else:
        opts = opts + [key, value] if key not in opts else set_key(opts, key, value)
    code, err = cli(train(opts), capsys)
    assert code == 2 and expected in one_error_line(err)
    assert not folder_of(opts).exists()


def test_resuming_past_a_smaller_max_epochs_is_refused(tiny_opts, capsys):
    opts = tiny_opts(2, "run")
    assert main(train(opts)) == 0
    code, err = cli(train(set_key(opts, "SOLVER.MAX_EPOCHS", "1"), "--resume"), capsys)
    assert code == 2 and "at epoch 2, beyond SOLVER.MAX_EPOCHS 1" in one_error_line(err)


@pytest.fixture
def unwritable(tmp_path, monkeypatch) -> Path:
    """A folder this process cannot create files in: by its mode, or for root (whom modes do not
    stop) by answering every file creation under it as the OS answers a read-only folder."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    real_open, real_mkdir = os.open, os.mkdir

    def refuse(real):
        def call(path, *args, **kwargs):
            if str(os.path.abspath(path)).startswith(str(folder)):
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real(path, *args, **kwargs)
        return call

    monkeypatch.setattr(os, "open", refuse(real_open))
    monkeypatch.setattr(os, "mkdir", refuse(real_mkdir))
    yield folder


def test_an_unwritable_output_dir_is_one_line(tiny_opts, capsys, unwritable):
    opts = set_key(tiny_opts(1), "OUTPUT_DIR", str(unwritable / "run"))
    code, err = cli(train(opts), capsys)
    line = one_error_line(err)
    assert code == 2 and "OUTPUT_DIR" in line and "not writable" in line and str(unwritable) in line


def test_too_little_free_space_for_one_checkpoint_is_refused_before_training(tiny_opts, capsys, monkeypatch):
    from mbf.engine import run_folder

    monkeypatch.setattr(run_folder, "free_bytes", lambda path: 1000)
    opts = tiny_opts(1, "small-disk")
    code, err = cli(train(opts), capsys)
    line = one_error_line(err)
    assert code == 2 and "1000 bytes free" in line and "one checkpoint needs about" in line
    assert not (folder_of(opts) / "last.pth").exists() and not (folder_of(opts) / "config.yaml").exists()


def test_low_free_space_for_the_whole_run_gives_one_warning(tiny_opts, capsys, monkeypatch, mbf_log):
    from mbf.engine import run_folder

    opts = set_key(tiny_opts(2, "low"), "SOLVER.CHECKPOINT_PERIOD", "1")
    real = run_folder.check_free_space

    def measured(folder, model, optimizer, weight_files):
        weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
        monkeypatch.setattr(run_folder, "free_bytes", lambda path: 4 * weights)  # one checkpoint, not three
        return real(folder, model, optimizer, weight_files)

    monkeypatch.setattr("mbf.engine.build.check_free_space", measured)
    from mbf.config import load_config
    from mbf.engine.build import build_trainer

    trainer = build_trainer(load_config(TINY_CONFIG, opts))
    trainer.close()
    warnings = [r.getMessage() for r in mbf_log.records if "free" in r.getMessage()]
    assert len(warnings) == 1 and "2 weights files" in warnings[0]


def test_test_weight_that_is_a_folder_or_an_onnx_file_is_named(tiny_opts, capsys, tmp_path):
    opts = tiny_opts(1, "run")
    assert main(train(opts)) == 0
    out = folder_of(opts)
    code, err = cli(["test", "--config_file", str(TINY_CONFIG), *opts, "TEST.WEIGHT", str(out)], capsys)
    assert code == 2 and "is a folder" in one_error_line(err) and "transformer_1.pth" in err
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"\x08\x07\x12\x07pytorch")
    code, err = cli(["test", "--config_file", str(TINY_CONFIG), *opts, "TEST.WEIGHT", str(onnx)], capsys)
    line = one_error_line(err)
    assert code == 2 and "ONNX export" in line and "weights_only" not in line and "trust" not in line


def test_an_error_during_an_epoch_is_printed_on_its_own_line(own_synthetic_root, tiny_opts, monkeypatch, tmp_path):
    from mbf.synthetic import DATASET_DIR_NAME

    opts = set_key(tiny_opts(1, "bar"), "DATASETS.ROOT_DIR", str(own_synthetic_root))
    train_dir = own_synthetic_root / DATASET_DIR_NAME / "bounding_box_train"
    damaged = sorted(train_dir.iterdir())
    import mbf.engine.trainer as trainer_module

    real = trainer_module.Trainer.train_epoch

    def damage_then_train(self, epoch):  # after the set was listed and checked: a file goes bad on disk
        for path in damaged:
            path.write_bytes(b"not a jpeg")
        return real(self, epoch)

    monkeypatch.setattr(trainer_module.Trainer, "train_epoch", damage_then_train)
    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    code = main(train(opts))
    assert code == 2
    assert "epoch 1" in err.text  # the bar was drawn
    line = err.text[err.text.index("mbf train: error:"):]
    before = err.text[:err.text.index("mbf train: error:")]
    # the bar's line was cleared (or ended): the message starts at the beginning of an empty line
    assert not re.split(r"[\r\n]", before)[-1].strip() and "cannot read image" in line and "\r" not in line


def test_progress_bars_are_drawn_only_on_a_terminal_never_into_a_log(tiny, capsys):
    images = tiny.images("crops", n=3)
    assert tiny.extract(tiny.weights(), Path(images[0]).parent, tiny.tmp / "g.npz") == 0
    captured = capsys.readouterr()
    assert "\r" not in captured.err + captured.out
