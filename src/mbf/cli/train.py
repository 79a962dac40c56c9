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
    parser.add_argument("--show_config", action="store_true",
                        help="print the whole configuration (it is always written to OUTPUT_DIR/config.yaml and the log)")
    # accepted for torch.distributed.launch; torchrun passes LOCAL_RANK in the environment
    parser.add_argument("--local_rank", type=int, default=None, help=argparse.SUPPRESS)
    add_config_arguments(parser)


def run(args) -> int:
    # deferred (see mbf.cli): `mbf --help` imports every subcommand module, not torch
    from ..config import load_config
    from ..runtime import FILE_ONLY, attach_log_file, setup_logging
    from ..engine.build import build_trainer

    main_process = int(os.environ.get("RANK", "0")) == 0
    logger = setup_logging(main_process)  # first, so that config warnings reach the log file too
    cfg = load_config(args.config_file, args.opts)
    logger.info("MBF training with config %s", args.config_file or "(defaults)")
    logger.info("Running with config:\n%s", cfg.dump(), extra=None if args.show_config else FILE_ONLY)
    trainer = build_trainer(cfg, config_file=args.config_file, resume=args.resume, overwrite=args.overwrite)
    if main_process:
        attach_log_file(logger, cfg.OUTPUT_DIR or ".", "train_log.txt")
    logging.getLogger("mbf.train").info("saving checkpoints and logs in %s", cfg.OUTPUT_DIR or ".")
    try:
        trainer.fit()
    except KeyboardInterrupt:
        done = trainer.history[-1]["epoch"] if trainer.history else trainer.start_epoch - 1
        saved = (f"last.pth in {trainer.output_dir} holds epoch {done}" if done
                 else f"no epoch finished in {trainer.output_dir}")
        raise KeyboardInterrupt(f"{saved}; to continue, run the same command with --resume") from None
    return 0
