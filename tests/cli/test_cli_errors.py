"""The commands fail with one clear line, exit status 2 and nothing written."""
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mbf.cli import SUBCOMMANDS, _available, main

REPO = Path(__file__).resolve().parents[2]


def run_main(argv, capsys):
    code = main(argv)
    return code, capsys.readouterr().err


def test_missing_config_file(capsys, tmp_path):
    code, err = run_main(["train", "--config_file", str(tmp_path / "nope.yml")], capsys)
    assert code == 2
    assert "config file not found" in err and "nope.yml" in err
    assert "Traceback" not in err


def test_unknown_override_key(capsys):
    code, err = run_main(["test", "--config_file", str(REPO / "configs/OCC_Duke/mbf.yml"), "TEST.WEIGTH", "x"], capsys)
    assert code == 2 and "TEST.WEIGHT" in err


def test_missing_dataset_folder_writes_nothing(capsys, tmp_path):
    out = tmp_path / "run"
    code, err = run_main(
        ["train", "--config_file", str(REPO / "configs/OCC_Duke/mbf.yml"), "MODEL.DEVICE", "cpu",
         "DATASETS.ROOT_DIR", str(tmp_path / "datasets"), "OUTPUT_DIR", str(out)],
        capsys,
    )
    assert code == 2
    assert "Occluded_Duke" in err
    assert not out.exists()


def test_test_command_without_weights(capsys, tmp_path):
    code, err = run_main(
        ["test", "--config_file", str(REPO / "configs/Market/mbf.yml"), "MODEL.DEVICE", "cpu",
         "OUTPUT_DIR", str(tmp_path / "run")],
        capsys,
    )
    assert code == 2 and "TEST.WEIGHT" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("script", ["train.py", "test.py"])
def test_root_shims_accept_the_seed_readme_form(script, tmp_path):
    """``python train.py --config_file F MODEL.DEVICE_ID "('2')"`` parses; it stops at the missing data."""
    proc = subprocess.run(
        [sys.executable, script, "--config_file", "configs/OCC_Duke/mbf.yml", "MODEL.DEVICE_ID", "('2')",
         "MODEL.DEVICE", "cpu", "DATASETS.ROOT_DIR", str(tmp_path / "none"), "TEST.WEIGHT", str(tmp_path / "w.pth"),
         "OUTPUT_DIR", str(tmp_path / "run")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    first, *rest = proc.stderr.strip().splitlines()
    assert first.startswith(f"mbf {script[:-3]}: error: ")  # one message; any further lines are its indented detail
    assert all(line.startswith("  ") for line in rest)


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_subcommand_module_imports_and_defines_its_interface(name):
    """``_available`` silently skips a subcommand whose own module is missing; none may be."""
    module = importlib.import_module(SUBCOMMANDS[name])
    assert isinstance(module.HELP, str) and module.HELP.strip()
    assert callable(module.add_arguments) and callable(module.run)
    assert name in _available()


def test_mbf_help_lists_every_subcommand():
    env = dict(os.environ, COLUMNS="200")  # one line per subcommand, whatever the terminal
    proc = subprocess.run([sys.executable, "-m", "mbf", "--help"], capture_output=True, text=True, timeout=60,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    # subcommand rows are indented under the COMMAND metavar; a word in a help text is not a row
    listed = re.findall(r"^ {4}(\S+)", proc.stdout, flags=re.MULTILINE)
    assert sorted(listed) == sorted(SUBCOMMANDS), proc.stdout
