"""The ``mbf`` command line.

Each subcommand lives in its own module of this package that defines ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``; ``run`` imports the heavy modules (torch,
the model) itself, so that building the parser for ``mbf --help`` stays light. User errors (:class:`mbf.MBFError`) are
printed as one line on stderr with exit status 2; nothing else is caught.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from ..errors import MBFError

# subcommand -> module (imported only when that subcommand runs or help is asked for)
SUBCOMMANDS = {
    "train": "mbf.cli.train",
    "test": "mbf.cli.test",
    "parse": "mbf.cli.parse",
    "synth": "mbf.cli.synth",
    "extract": "mbf.cli.extract",
    "search": "mbf.cli.search",
    "export": "mbf.cli.export",
    "index": "mbf.cli.index",
}

log = logging.getLogger("mbf")


def _available() -> dict:
    modules = {}
    for name, module_name in SUBCOMMANDS.items():
        try:
            modules[name] = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:  # a real missing dependency: let it surface
                raise
    return modules


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mbf", description="MBF occluded person re-identification: train, evaluate, parse, search."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in _available().items():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run, _switches=_switches(p))
    return parser


def _switches(parser: argparse.ArgumentParser) -> dict[str, str]:
    """The on/off options of a subcommand, ``{option string: destination}``."""
    return {option: action.dest for action in parser._actions
            if action.nargs == 0 and action.const is True for option in action.option_strings}


def _late_switches(args: argparse.Namespace) -> None:
    """Switches such as ``--resume`` written after the ``KEY VALUE`` overrides: argparse hands
    everything after the first override to ``opts``; take them back out of it."""
    opts = getattr(args, "opts", None)
    if not opts:
        return
    switches = getattr(args, "_switches", {})
    kept = []
    for token in opts:
        if token in switches:
            setattr(args, switches[token], True)
        else:
            kept.append(token)
    args.opts = kept


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _late_switches(args)
    try:
        return int(args._run(args) or 0)
    except MBFError as exc:
        return _fail(args.command, user_message(exc))
    except OSError as exc:  # the machine's answer (permissions, a full disk, a link loop) where no check named it
        return _fail(args.command, os_error_message(exc))
    except KeyboardInterrupt as exc:
        _end_progress_bars()
        print(f"mbf {args.command}: interrupted" + (f"; {exc}" if str(exc) else ""), file=sys.stderr)
        return 130


def _fail(command: str, message: str) -> int:
    _end_progress_bars()
    print(f"mbf {command}: error: {message}", file=sys.stderr)
    return 2


def _end_progress_bars() -> None:
    """Close the progress bars an error left open and end their line, so that the message starts
    a line of its own (in a terminal and in a captured log) instead of following a carriage return."""
    tqdm = sys.modules.get("tqdm")
    drawn = False
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        drawn = drawn or not bar.disable
        bar.close()
    sys.stdout.flush()
    if drawn:
        sys.stderr.write("\n")


def os_error_message(exc: OSError) -> str:
    """An OSError as one line naming its file(s), without the Python exception's type."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    files = [str(f) for f in (exc.filename, exc.filename2) if f is not None]
    return f"{' -> '.join(files)}: {reason}" if files else reason


def user_message(exc: BaseException) -> str:
    """The error's own message, also when a DataLoader worker re-raised it with its traceback."""
    text = str(exc)
    if "\nOriginal Traceback" in text:  # torch.utils.data wraps worker errors this way
        last = text.rstrip().splitlines()[-1]
        prefix = f"{type(exc).__module__}.{type(exc).__name__}: "
        text = last[len(prefix):] if last.startswith(prefix) else last
    return text


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config_file F`` followed by ``KEY VALUE`` overrides, as in the seed's scripts."""
    parser.add_argument("--config_file", default="", help="path to a YAML config (configs/...)")
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, default=[], help="config overrides: KEY VALUE [KEY VALUE ...]"
    )
