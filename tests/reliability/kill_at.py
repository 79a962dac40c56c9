"""Run ``mbf`` and SIGKILL the process at one chosen moment (a helper of test_training_faults.py).

    python kill_at.py KIND NAME COUNT -- <mbf arguments>

The moments, counted in this process only:
- ``step - N``: at the start of the N-th training batch;
- ``write NAME N``: inside the N-th ``write`` call into checkpoint NAME (``last.pth``,
  ``transformer_3.pth``): the file is half written under its temporary name;
- ``replaced NAME N``: right after the N-th time NAME was moved into place, before anything
  else is written.
``none - 0`` never kills. A SIGKILL runs no cleanup, as a killed machine or ``kill -9`` would.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

KIND, NAME, COUNT = sys.argv[1], sys.argv[2], int(sys.argv[3])
ARGS = sys.argv[sys.argv.index("--") + 1:]
seen = {"n": 0}


def moment(kind: str, name: str = "-") -> None:
    if kind == KIND and name == NAME:
        seen["n"] += 1
        if seen["n"] == COUNT:
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)


def final_name(temporary: str) -> str:
    """``.last.pth.tmp-123-abcdef`` -> ``last.pth``."""
    return Path(temporary).name[1:].rsplit(".tmp-", 1)[0]


def main() -> int:
    from mbf.cli import main as mbf_main
    from mbf.engine import checkpoint, trainer

    write, replace, to_device = checkpoint._RecordingWriter.write, os.replace, trainer.Trainer._to_device

    def counted_write(self, data):
        moment("write", final_name(self.fh.name))
        return write(self, data)

    def counted_replace(src, dst, *args, **kwargs):
        replace(src, dst, *args, **kwargs)
        moment("replaced", Path(dst).name)

    def counted_to_device(self, batch):
        moment("step")
        return to_device(self, batch)

    checkpoint._RecordingWriter.write = counted_write
    os.replace = counted_replace
    trainer.Trainer._to_device = counted_to_device
    return mbf_main(ARGS)


if __name__ == "__main__":
    sys.exit(main())
