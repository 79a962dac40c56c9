"""``mbf extract``: descriptors of every image under a folder, saved as an .npz index.

The index keeps, besides the descriptors and image paths, the config file, the overrides
and the weights they came from, so ``mbf search`` can embed a query image the same way.
"""
from __future__ import annotations

import logging
import os

from . import add_config_arguments

HELP = "embed a folder of images: mbf extract --config_file F --weights W --images DIR --out feats.npz"

log = logging.getLogger("mbf.extract")


def add_arguments(parser) -> None:
    parser.add_argument("--weights", required=True, help="trained model (.pth, ours or the reference's)")
    parser.add_argument("--images", required=True, help="folder of images (searched recursively: jpg, png, tif, ...)")
    parser.add_argument("--out", required=True, help="output .npz index")
    add_config_arguments(parser)


def load_embedder(cfg, weights: str):
    """The model of ``cfg`` with ``weights`` loaded; a checkpoint error always names the file."""
    from ..errors import CheckpointError
    from ..retrieval import Embedder

    try:
        return Embedder.load(cfg, weights)
    except CheckpointError as exc:
        if weights in str(exc):
            raise
        raise CheckpointError(f"{weights}: {exc}") from None


def run(args) -> int:
    # deferred (see mbf.cli): `mbf --help` imports every subcommand module, not torch
    from ..config import load_config
    from ..engine.runtime import setup_logging
    from ..retrieval import list_images, save_index

    cfg = load_config(args.config_file, args.opts)
    setup_logging(True)
    paths = list_images(args.images)  # fails before the model is built when there is nothing to embed
    embedder = load_embedder(cfg, args.weights)
    log.info("embedding %d images under %s with %s", len(paths), args.images, args.weights)
    feats = embedder.embed(paths, progress=True)
    # absolute paths, so `mbf search` finds the model from any working directory
    config_file = os.path.abspath(args.config_file) if args.config_file else ""
    out = save_index(args.out, feats, paths, config_file, os.path.abspath(args.weights), list(args.opts))
    log.info("%d descriptors of %d dims written to %s", *feats.shape, out)
    return 0
