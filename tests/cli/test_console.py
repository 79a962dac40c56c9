"""A console a person reads: refusals first, no screen of keys, log lines that never break the
progress bar, and Ctrl-C that says how to continue."""
from __future__ import annotations

import logging
import re
import sys
from pathlib import Path


from mbf.cli import main
from mbf.config import load_config

from ..engine.conftest import Terminal, interrupt_in_epoch, small_synthetic_root, tiny_opts  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
TINY_CONFIG = str(REPO / "configs" / "Synthetic" / "mbf_tiny.yml")


def terminal(monkeypatch) -> Terminal:
    """Called in the test body: pytest sets its own capture streams after the fixtures' set-up."""
    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    monkeypatch.setattr(sys, "stderr", screen)
    return screen


def test_the_configuration_goes_to_the_log_file_not_the_screen(tiny_opts, capsys):
    opts = tiny_opts(1, "quiet")
    assert main(["train", "--config_file", TINY_CONFIG, *opts]) == 0
    shown = capsys.readouterr()
    assert "Running with config" not in shown.out + shown.err and "SOLVER:" not in shown.out
    log_file = Path(opts[opts.index("OUTPUT_DIR") + 1]) / "train_log.txt"
    assert "Running with config" in log_file.read_text() and "IMS_PER_BATCH" in log_file.read_text()


def test_show_config_prints_it_and_a_refusal_comes_before_anything_else(tiny_opts, capsys):
    opts = tiny_opts(1, "shown")
    assert main(["train", "--config_file", TINY_CONFIG, *opts, "--show_config"]) == 0
    assert "Running with config" in capsys.readouterr().out
    assert main(["train", "--config_file", TINY_CONFIG, *opts]) == 2  # the folder holds that run now
    shown = capsys.readouterr()
    assert shown.err.startswith("mbf train: error: OUTPUT_DIR") and "SOLVER:" not in shown.out


def test_log_lines_never_land_inside_the_progress_bar(tiny_opts, monkeypatch):
    screen = terminal(monkeypatch)
    code = main(["train", "--config_file", TINY_CONFIG, *tiny_opts(2, "bar"), "SOLVER.LOG_PERIOD", "1"])
    monkeypatch.undo()
    assert code == 0, screen.text[-3000:]
    assert re.search(r"epoch 2/2, iteration 2/2, loss [\d.]+, acc [\d.]+, [\d.]+ s/batch, \d+ s left \|", screen.text)
    logged = [line for line in screen.visible_lines() if " INFO: " in line]
    assert any("Iteration[" in line for line in logged)
    for line in logged:
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} mbf", line), line  # starts the line, no bar before it
        assert "s/batch" not in line and "|" not in line  # nor one after it
    assert any(re.search(r"Epoch 2/2 done\. .*training left: about 0 s", line) for line in logged)


def test_ctrl_c_says_which_epoch_is_saved_and_how_to_continue(tiny_opts, capsys, monkeypatch):
    interrupt_in_epoch(monkeypatch, 2)
    opts = tiny_opts(2, "stopped")
    assert main(["train", "--config_file", TINY_CONFIG, *opts]) == 130
    err = capsys.readouterr().err
    assert "mbf train: interrupted; last.pth in" in err and "holds epoch 1" in err and "--resume" in err
    monkeypatch.undo()
    assert main(["train", "--config_file", TINY_CONFIG, *opts, "--resume"]) == 0  # the folder is free again


def test_defaults_match_the_readme_and_warn_about_nothing(mbf_log):
    cfg = load_config(None, [])
    assert cfg.DATASETS.ROOT_DIR == "datasets"
    assert not [r for r in mbf_log.records if r.levelno >= logging.WARNING]
    load_config(None, ["TEST.EVAL", "False"])  # set by the user: a key with no effect is worth a warning
    assert [r.getMessage() for r in mbf_log.records if r.levelno >= logging.WARNING][0].startswith(
        "config key TEST.EVAL is False but has no effect")


def test_the_seed_configs_load_without_a_warning(mbf_log):
    for config in sorted((REPO / "configs").glob("*/*.yml")):
        load_config(config, [])
    assert not [r.getMessage() for r in mbf_log.records if r.levelno >= logging.WARNING]
