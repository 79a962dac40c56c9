"""``mbf --help`` answers at once: building the parser imports no torch."""
from __future__ import annotations

import subprocess
import sys

import pytest

from mbf.cli import SUBCOMMANDS


@pytest.mark.parametrize("argv", [[], *([name] for name in SUBCOMMANDS)], ids=lambda a: " ".join(a) or "mbf")
def test_help_imports_no_torch(argv):
    probe = ("import sys\nfrom mbf.cli import main\ntry:\n    main([*sys.argv[1:], '--help'])\nexcept SystemExit as e:\n"
             "    code = e.code\nheavy = sorted(m for m in ('torch', 'torchvision', 'timm', 'scipy', 'matplotlib') "
             "if m in sys.modules)\nprint('heavy:', heavy, 'code:', code)")
    done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("heavy: [] code: 0"), done.stdout[-500:]
    assert "usage: mbf" in done.stdout
