"""The README's commands are the ones that work: CI runs its test block, and its first-hour
path runs on a demo-shaped working folder (a tiny model in place of the 50-epoch one)."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from ..engine.conftest import small_synthetic_root  # noqa: F401  (fixture)
from ..retrieval.conftest import OPTS, Tiny

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")


def block_after(heading: str) -> str:
    """The first ```bash block after the line that starts with ``heading``."""
    start = README.index(heading)
    match = re.search(r"```bash\n(.*?)```", README[start:], re.S)
    return match.group(1)


def commands(block: str) -> list[str]:
    """One string per command: continuation lines joined, trailing comments dropped."""
    joined = block.replace("\\\n", " ")
    return [re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines() if line.strip()]


def test_ci_runs_the_readme_test_block_in_a_fresh_virtual_environment():
    ci = (REPO / ".ci" / "run").read_text()
    assert "python3 -m venv" in block_after("You need Python 3.10")
    assert "Install and run the whole test suite" in ci  # it extracts and runs that block verbatim
    assert commands(block_after("Install and run the whole test suite")) == [
        'pip install torch==2.14.1 torchvision==0.29.1 && pip install -e ".[test]" && python -m pytest -q']


def test_the_first_hour_path_runs_on_the_demos_outputs(small_synthetic_root, tmp_path):  # noqa: F811
    work = tmp_path / "clone"
    work.mkdir()
    for name in ("configs", "test.py", "train.py"):
        (work / name).symlink_to(REPO / name)
    shutil.copytree(small_synthetic_root, work / "datasets")
    weights = work / "logs" / "synthetic_mbf_tiny" / "transformer_50.pth"
    weights.parent.mkdir(parents=True)
    shutil.copy(Tiny(tmp_path).weights(), weights)
    tiny = shlex.join(OPTS)  # the tiny model's size, appended to every command that reads the config
    ran = []
    for command in commands(block_after("### Your first hour")):
        if command.startswith(("pip ", "tensorboard ")):  # installs, and a server that runs until stopped
            continue
        if "--config_file" in command:
            command = f"{command} {tiny}"
        env = {**os.environ, "W": str(weights.relative_to(work)), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        done = subprocess.run(["bash", "-c", command.replace("python ", f"{sys.executable} ", 1)], cwd=work, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{command}\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}"
        ran.append(command.split()[0:2])
    assert [c[1] for c in ran] == ["test.py", "extract", "search", "export"]
    assert (work / "logs" / "synthetic_mbf_tiny" / "test" / "transformer_50" / "results.json").is_file()
    assert (work / "gallery.npz").is_file() and (work / "mbf_tiny.onnx").is_file()
