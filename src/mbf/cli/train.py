"""``mbf train`` / ``python train.py``: train MBF from a config."""
from __future__ import annotations

import argparse
import logging
import os

from . import add_config_arguments

HELP = "train a model: mbf train --config_file configs/OCC_Duke/mbf.yml [KEY VALUE ...]"


def add_arguments(parser) -> None:
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in OUTPUT_DIR from its last.pth (its config must match)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run found in OUTPUT_DIR (deletes its checkpoints, results, logs and pictures)")
    # accepted for torch.distributed.launch; torchrun passes LOCAL_RANK in the environment
    parser.add_argument("--local_rank", type=int, default=None, help=argparse.SUPPRESS)
    add_config_arguments(parser)


def run(args) -> int:
    # deferred (see mbf.cli): `mbf --help` imports every subcommand module, not torch
    from ..config import load_config
    from ..engine.runtime import attach_log_file, setup_logging
    from ..engine.trainer import build_trainer

    main_process = int(os.environ.get("RANK", "0")) == 0
    logger = setup_logging(main_process)  # first, so that config warnings reach the log file too
    cfg = load_config(args.config_file, args.opts)
    logger.info("MBF training with config %s", args.config_file or "(defaults)")
    logger.info("Running with config:\n%s", cfg.dump())
    trainer = build_trainer(cfg, config_file=args.config_file, resume=args.resume, overwrite=args.overwrite)
    if main_process:
        attach_log_file(logger, cfg.OUTPUT_DIR or ".", "train_log.txt")
    logging.getLogger("mbf.train").info("saving checkpoints and logs in %s", cfg.OUTPUT_DIR or ".")
    trainer.fit()
    return 0
