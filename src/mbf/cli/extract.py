"""``mbf extract``: descriptors of every image under a folder, saved as an .npz index."""
from __future__ import annotations

import logging

from . import add_config_arguments

HELP = "embed a folder of images: mbf extract --config_file F --weights W --images DIR --out feats.npz"

log = logging.getLogger("mbf.extract")


def add_arguments(parser) -> None:
    parser.add_argument("--weights", required=True, help="trained model (.pth, ours or the reference's)")
    parser.add_argument("--images", required=True, help="folder of images (searched recursively)")
    parser.add_argument("--out", required=True, help="output .npz index")
    add_config_arguments(parser)


def run(args) -> int:
    from ..config import load_config
    from ..engine.runtime import setup_logging
    from ..retrieval import Embedder, list_images, save_index

    cfg = load_config(args.config_file, args.opts)
    setup_logging(True)
    paths = list_images(args.images)
    embedder = Embedder.load(cfg, args.weights)
    feats = embedder.embed(paths, progress=True)
    out = save_index(args.out, feats, paths, args.config_file, args.weights, list(args.opts))
    log.info("%d descriptors of %d dims written to %s", *feats.shape, out)
    return 0
