"""``mbf search``: the gallery images nearest to a query image."""
from __future__ import annotations

HELP = "search an index: mbf search --gallery feats.npz --query IMG [--topk 10]"


def add_arguments(parser) -> None:
    parser.add_argument("--gallery", required=True, help="index written by `mbf extract`")
    parser.add_argument("--query", required=True, help="query image")
    parser.add_argument("--topk", type=int, default=10, help="how many results (default 10)")
    parser.add_argument("--config_file", default=None, help="config of the model (default: the index's)")
    parser.add_argument("--weights", default=None, help="model weights (default: the index's)")


def run(args) -> int:
    from ..config import load_config
    from ..retrieval import Embedder, Index

    index = Index.load(args.gallery)
    config_file = args.config_file if args.config_file is not None else index.config_file
    cfg = load_config(config_file, index.opts if args.config_file is None else [])
    embedder = Embedder.load(cfg, args.weights or index.weights)
    query = embedder.embed([args.query])[0]
    for rank, (path, dist) in enumerate(index.search(query, args.topk), start=1):
        print(f"{rank:3d}  {dist:.4f}  {path}")
    return 0
