"""``mbf test`` / ``python test.py``: evaluate trained weights on the configured dataset."""
from __future__ import annotations

from . import add_config_arguments

HELP = "evaluate weights: mbf test --config_file configs/OCC_Duke/mbf.yml TEST.WEIGHT path.pth"


def add_arguments(parser) -> None:
    parser.add_argument("--show_config", action="store_true",
                        help="print the whole configuration (it is always written to the evaluation's folder)")
    add_config_arguments(parser)


def run(args) -> int:
    # deferred (see mbf.cli): `mbf --help` imports every subcommand module, not torch
    from ..config import load_config
    from ..engine.build import run_test
    from ..runtime import FILE_ONLY, setup_logging

    logger = setup_logging(True)  # first, so that config warnings reach the log file too
    cfg = load_config(args.config_file, args.opts)
    logger.info("Running with config:\n%s", cfg.dump(), extra=None if args.show_config else FILE_ONLY)
    run_test(cfg, args.config_file)
    return 0
