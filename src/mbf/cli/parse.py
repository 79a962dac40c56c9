"""``mbf parse``: run the human parser once over the training images and store the labels.

    mbf parse --config_file configs/OCC_Duke/mbf.yml [KEY VALUE ...]
    mbf train --config_file configs/OCC_Duke/mbf.yml HUMAN_PARSING.SOURCE cache

Resumable (images already stored are skipped); batches of HUMAN_PARSING.BATCH_SIZE images on
MODEL.DEVICE (float16 autocast on CUDA when SOLVER.AMP, as the online parser in training).
"""
from __future__ import annotations

import logging

from . import add_config_arguments

HELP = "build the parse cache: mbf parse --config_file F (then train with HUMAN_PARSING.SOURCE cache)"

log = logging.getLogger("mbf.parse")


def add_arguments(parser) -> None:
    add_config_arguments(parser)


def run(args) -> int:
    # deferred (see mbf.cli): `mbf --help` imports every subcommand module, not torch
    from ..config import load_config
    from ..data.build import build_num_workers
    from ..data.build import load_dataset
    from ..runtime import resolve_device, set_threads, setup_logging
    from ..parsing import HumanParser, ParseCache, parse_images

    cfg = load_config(args.config_file, args.opts)
    setup_logging(True)
    device = resolve_device(cfg.MODEL.DEVICE, cfg.MODEL.DEVICE_ID)
    set_threads(cfg.MODEL.CPU_THREADS)
    parser = HumanParser.from_config(cfg).to(device)
    cache = ParseCache.from_config(cfg)
    dataset = load_dataset(cfg)
    paths = [item.path for item in dataset.train]
    with cache.lock():
        if cache.remove_temporaries():
            log.info("parse cache %s: removed the half-written files of an interrupted run", cache.folder)
        cache.write_manifest()
        log.info("parse cache %s (%s): %d training images", cache.folder, cache.settings.describe(), len(paths))
        done = parse_images(parser, cache, paths, cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD,
                            cfg.HUMAN_PARSING.BATCH_SIZE, device, num_workers=build_num_workers(cfg),
                            amp=bool(cfg.SOLVER.AMP))
    log.info("parse cache %s: %d images parsed now, %d in all; train with HUMAN_PARSING.SOURCE cache "
             "HUMAN_PARSING.CACHE_DIR %s", cache.folder, done, len(paths), cache.base)
    return 0
