"""``mbf search``: the gallery images nearest to a query image, from an ``mbf extract`` index.

The query is embedded with the model the index was made with (its config file, overrides
and weights are stored in it) unless ``--config_file`` / ``--weights`` say otherwise.
"""
from __future__ import annotations

HELP = "search an index: mbf search --gallery feats.npz --query IMG [--topk 10]"


def add_arguments(parser) -> None:
    parser.add_argument("--gallery", required=True, help="index written by `mbf extract`")
    parser.add_argument("--query", required=True, help="query image")
    parser.add_argument("--topk", type=int, default=10, help="how many results (default 10)")
    parser.add_argument("--config_file", default=None, help="config of the model (default: the index's)")
    parser.add_argument("--weights", default=None, help="model weights (default: the index's)")


def run(args) -> int:
    # deferred (see mbf.cli): `mbf --help` imports every subcommand module, not torch
    from ..config import load_config
    from ..data import read_image
    from ..errors import InputError
    from ..retrieval import Index
    from .extract import load_embedder

    if args.topk < 1:
        raise InputError(f"--topk must be at least 1, got {args.topk}")
    index = Index.load(args.gallery)
    read_image(args.query)  # a missing or unreadable query fails before the model is loaded
    own_config = args.config_file is not None
    cfg = load_config(args.config_file if own_config else index.config_file, [] if own_config else index.opts)
    embedder = load_embedder(cfg, args.weights or index.weights)
    query = embedder.embed([args.query])[0]
    print(f"{'rank':>4}  {'distance':>8}  path")
    for rank, (path, dist) in enumerate(index.search(query, args.topk), start=1):
        print(f"{rank:4d}  {dist:8.4f}  {path}")
    return 0
