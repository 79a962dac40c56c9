"""Runs never destroy each other: a folder holding a run is refused, a resume must match the
run it continues, and every run folder records its config, command line and environment."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from mbf.cli import main
from mbf.config import load_config
from mbf.engine.checkpoint import atomic_save, load_file
from mbf.config import config_mapping, differences, flatten
from mbf.engine.run_folder import RESUMABLE_KEYS, open_run_folder
from mbf.engine.build import build_trainer
from mbf.errors import RunFolderError

from .conftest import TINY_CONFIG


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def train(opts: list[str], *switches: str, capsys=None) -> tuple[int, str]:
    code = main(["train", "--config_file", str(TINY_CONFIG), *opts, *switches])
    out = capsys.readouterr() if capsys is not None else None
    return code, (out.out + out.err) if out is not None else ""


@pytest.fixture
def finished_run(tiny_opts, capsys):
    """A one-epoch run in its own folder: (its overrides, its folder)."""
    opts = tiny_opts(1, "first")
    code, text = train(opts, capsys=capsys)
    assert code == 0, text
    return opts, Path(opts[opts.index("OUTPUT_DIR") + 1])


def test_a_second_config_into_the_same_folder_is_refused_and_touches_nothing(finished_run, capsys):
    opts, folder = finished_run
    before = snapshot(folder)
    code, err = train(opts + ["SOLVER.BASE_LR", "0.0123", "MODEL.VIT_DEPTH", "3"], capsys=capsys)
    assert code == 2
    assert str(folder) in err and "holds another run" in err
    assert "SOLVER.BASE_LR" in err and "MODEL.VIT_DEPTH: 2 (saved) -> 3 (now)" in err
    assert "--resume" in err and "--overwrite" in err and "another OUTPUT_DIR" in err
    assert snapshot(folder) == before  # byte-identical, nothing added


def test_the_same_config_again_is_refused_too_because_it_would_replace_the_run(finished_run, capsys):
    opts, folder = finished_run
    before = snapshot(folder)
    code, err = train(opts, capsys=capsys)
    assert code == 2 and "same config" in err
    assert snapshot(folder) == before


def test_overwrite_replaces_the_previous_run_and_keeps_foreign_files(finished_run, capsys):
    opts, folder = finished_run
    (folder / "my_notes.txt").write_text("keep me")
    atomic_save({"stale": torch.zeros(1)}, folder / "transformer_7.pth")  # the old run's later checkpoint
    code, text = train(opts, "--overwrite", capsys=capsys)
    assert code == 0, text
    assert not (folder / "transformer_7.pth").exists()
    assert (folder / "my_notes.txt").read_text() == "keep me"
    run = json.loads((folder / "run.json").read_text())
    assert len(run["invocations"]) == 1  # the replaced run's record went with it


def test_resume_refuses_a_changed_architecture_key_and_names_it(finished_run, capsys):
    opts, folder = finished_run
    before = snapshot(folder)
    code, err = train(opts + ["MODEL.VIT_DEPTH", "3"], "--resume", capsys=capsys)
    assert code == 2
    assert "cannot resume" in err and str(folder) in err
    assert "MODEL.VIT_DEPTH: 2 (saved) -> 3 (now)" in err
    assert snapshot(folder) == before


def test_resume_after_the_overrides_extends_the_run_and_logs_what_changed(finished_run, capsys):
    opts, folder = finished_run
    longer = list(opts)
    longer[longer.index("SOLVER.MAX_EPOCHS") + 1] = "2"
    longer += ["SOLVER.LOG_PERIOD", "5"]
    code, text = train(longer, "--resume", capsys=capsys)  # --resume after KEY VALUE pairs
    assert code == 0, text
    assert "continuing at epoch 2" in text
    assert "resuming with SOLVER.MAX_EPOCHS changed: 1 -> 2" in text
    assert load_file(folder / "last.pth")["epoch"] == 2
    assert (folder / "transformer_2.pth").is_file() and (folder / "transformer_1.pth").is_file()
    run = json.loads((folder / "run.json").read_text())
    first, second = run["invocations"]
    assert (first["resume"], first["start_epoch"]) == (False, 1)
    assert (second["resume"], second["start_epoch"]) == (True, 2)
    assert set(second["changed_keys"]) == {"SOLVER.MAX_EPOCHS", "SOLVER.LOG_PERIOD"}
    assert yaml.safe_load((folder / "config.yaml").read_text())["SOLVER"]["MAX_EPOCHS"] == 2


def test_resume_without_last_pth_in_a_folder_with_results_is_refused(finished_run, capsys):
    opts, folder = finished_run
    (folder / "last.pth").unlink()
    code, err = train(opts, "--resume", capsys=capsys)
    assert code == 2 and "no last.pth in" in err and str(folder) in err and "results.json" in err


def test_resume_in_an_empty_folder_says_so_and_starts_from_epoch_one(tiny_cfg, mbf_log):
    cfg = tiny_cfg(epochs=1, output="fresh")
    trainer = build_trainer(cfg, resume=True)
    assert trainer.start_epoch == 1
    assert f"no last.pth in {cfg.OUTPUT_DIR}" in mbf_log.text


def test_a_folder_whose_run_died_before_its_first_checkpoint_is_reused(tiny_cfg):
    cfg = tiny_cfg(epochs=1, output="died")
    build_trainer(cfg)  # wrote its records, then "died" before any checkpoint
    folder = Path(cfg.OUTPUT_DIR)
    assert (folder / "run.json").is_file() and not (folder / "last.pth").exists()
    build_trainer(cfg)  # accepted
    assert len(json.loads((folder / "run.json").read_text())["invocations"]) == 1  # a new run's record


def test_a_run_folder_describes_its_run(finished_run):
    opts, folder = finished_run
    cfg = load_config(TINY_CONFIG, opts)
    assert flatten(yaml.safe_load((folder / "config.yaml").read_text())) == config_mapping(cfg)
    run = json.loads((folder / "run.json").read_text())
    assert run["project"] == "mbf-reid" and run["version"] and run["config_file"] == str(TINY_CONFIG)
    (invocation,) = run["invocations"]
    assert invocation["command"] and invocation["cwd"] and invocation["start_time"][:2] == "20"
    env = json.loads((folder / "environment.json").read_text())
    for key in ("python", "torch", "torchvision", "timm", "cuda", "cudnn", "gpu_count", "gpus", "amp",
                "amp_dtype", "world_size", "device"):
        assert key in env, key
    assert env["torch"] == torch.__version__ and env["world_size"] == 1
    assert (env["device"], env["amp"], env["amp_dtype"]) == ("cpu", False, "float32")


def test_last_pth_holds_only_plain_types_and_no_rng_state(finished_run):
    _, folder = finished_run
    state = load_file(folder / "last.pth")
    assert "rng" not in state and "scheduler" not in state


def test_a_last_pth_of_an_early_version_is_refused_with_a_conversion_that_works(finished_run, tiny_cfg, capsys):
    """Early versions stored NumPy random states, which only an unsafe load reads: such a file is
    refused (never unpickled), and the conversion the message gives makes it resumable."""
    import random
    import shlex
    import subprocess
    import sys

    import numpy as np

    opts, folder = finished_run
    state = load_file(folder / "last.pth")
    state["rng"] = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    atomic_save(state, folder / "last.pth")
    (folder / "config.yaml").unlink()  # the earlier version wrote no records
    longer = opts[:opts.index("SOLVER.MAX_EPOCHS")] + ["SOLVER.MAX_EPOCHS", "2"] + opts[opts.index("SOLVER.MAX_EPOCHS") + 2:]
    code, err = train(longer, "--resume", capsys=capsys)
    assert code == 2 and "was not loaded" in err and "numpy" in err and "Traceback" not in err
    line = next(text for text in err.splitlines() if "error:" in text)
    assert "weights_only=False" not in line  # the conversion itself stays weights-only
    command = shlex.split(line[line.index("python -c"):])
    subprocess.run([sys.executable, *command[1:]], check=True)
    cfg = load_config(TINY_CONFIG, longer)
    trainer = build_trainer(cfg, resume=True)
    assert trainer.start_epoch == 2
    trainer.close()


def test_only_bookkeeping_keys_may_change_on_resume():
    assert {"SOLVER.MAX_EPOCHS", "SOLVER.EVAL_PERIOD", "SOLVER.LOG_PERIOD", "DATALOADER.NUM_WORKERS"} <= RESUMABLE_KEYS
    for key in ("MODEL.STRIDE_SIZE", "SOLVER.BASE_LR", "SOLVER.SEED", "DATASETS.NAMES", "INPUT.SIZE_TRAIN",
                "SOLVER.IMS_PER_BATCH", "SOLVER.AMP", "MODEL.NAME"):
        assert key not in RESUMABLE_KEYS, key
    assert differences({"A.B": [1, 2], "A.C": 1}, {"A.B": [1, 3], "A.D": 2}) == {"A.B": ([1, 2], [1, 3])}


def test_resume_and_overwrite_together_are_refused(tmp_path):
    cfg = load_config(TINY_CONFIG, ["OUTPUT_DIR", str(tmp_path)])
    with pytest.raises(RunFolderError, match="exclude each other"):
        open_run_folder(tmp_path, config_mapping(cfg), cfg.SOLVER.MAX_EPOCHS, resume=True, overwrite=True)
