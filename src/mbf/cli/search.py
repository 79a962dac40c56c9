"""``mbf search``: the gallery images nearest to a query image.

``--gallery`` is what ``mbf extract`` wrote (.npz or folder: exact brute-force search) or
what ``mbf index`` wrote (a FAISS index folder). The query is embedded with the model the
gallery was made with (its config file, overrides and weights are stored in it) unless
``--config_file`` / ``--weights`` say otherwise. Result paths are printed as the file system names
them; bytes of a name that are not UTF-8 are shown as ``\\xNN`` escapes.
"""
from __future__ import annotations

import argparse

HELP = "search a gallery: mbf search --gallery feats.npz|DIR|INDEX --query IMG [--topk 10]"


def add_arguments(parser) -> None:
    parser.add_argument("--gallery", required=True, help="gallery of `mbf extract` or index of `mbf index`")
    parser.add_argument("--query", required=True, help="query image")
    parser.add_argument("--topk", type=int, default=10, help="how many results (default 10)")
    parser.add_argument("--config_file", default=None, help="config of the model (default: the gallery's)")
    parser.add_argument("--weights", default=None, help="model weights or .onnx (default: the gallery's)")
    parser.add_argument("--nprobe", type=int, default=None, help="ivfpq index: lists visited (default: the index's)")
    parser.add_argument("--k_factor", type=int, default=None,
                        help="ivfpq index: codes re-scored with its 8-bit copies, per result (default: the index's)")
    parser.add_argument("--rerank", action="store_true",
                        help="ivfpq index: re-score its best candidates exactly from the gallery it was built from")
    parser.add_argument("--rerank_factor", type=int, default=None,
                        help="with --rerank: candidates re-scored, per result (default: the index's)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[],
                        help="with --config_file: its overrides KEY VALUE [KEY VALUE ...]")


def run(args) -> int:
    # deferred (see mbf.cli): `mbf --help` imports every subcommand module, not torch
    from ..data import read_image
    from ..errors import InputError
    from ..retrieval import Embedder
    from ..retrieval.faiss_index import SearchIndex
    from ..retrieval.gallery import Gallery

    if args.topk < 1:
        raise InputError(f"--topk must be at least 1, got {args.topk}")
    if SearchIndex.is_index(args.gallery):
        searcher = SearchIndex.load(args.gallery)
        meta, dim = searcher.meta.get("gallery", {}), searcher.dim  # an index made by other means records no model
        kwargs = {"nprobe": args.nprobe, "k_factor": args.k_factor, "rerank_factor": args.rerank_factor}
        if args.rerank:
            if searcher.meta["kind"] != "ivfpq":
                raise InputError(f"--rerank applies to an ivfpq index; {args.gallery} is a {searcher.meta['kind']} "
                                 "(exact) index")
            if not meta.get("source"):
                raise InputError(f"{args.gallery} does not record its gallery, so --rerank cannot read it")
            kwargs["rerank"] = Gallery.load(meta["source"]).rows()
    else:
        if args.rerank:
            raise InputError("--rerank applies to an ivfpq index; a gallery is searched exactly anyway")
        searcher = Gallery.load(args.gallery)
        meta, dim, kwargs = searcher.meta(), searcher.dim, {}
    read_image(args.query)  # a missing or unreadable query fails before the model is loaded
    own_config = args.config_file is not None
    config = args.config_file if own_config else meta.get("config_file", "")
    weights = args.weights or meta.get("weights")
    if not weights:
        raise InputError(f"{args.gallery} does not record the model it was made with: give --weights (and --config_file)")
    embedder = Embedder.load(weights, config, args.opts if own_config else meta.get("opts", []))
    if embedder.dim != dim:
        raise InputError(f"the model gives {embedder.dim}-d descriptors, {args.gallery} holds {dim}-d ones")
    gallery_norm = bool(meta.get("feat_norm", embedder.card.feat_norm))
    if embedder.card.feat_norm != gallery_norm:
        state = {True: "L2-normalised", False: "not normalised"}
        raise InputError(f"the model's descriptors are {state[embedder.card.feat_norm]} (TEST.FEAT_NORM), those of "
                         f"{args.gallery} are {state[gallery_norm]}: their distances would rank wrongly")
    results = searcher.results(embedder.embed([args.query]), args.topk, **kwargs)[0]
    if "rerank" in kwargs:
        kwargs["rerank"].close()
    print(f"{'rank':>4}  {'distance':>8}  path")
    for rank, (path, dist) in enumerate(results, start=1):
        print(f"{rank:4d}  {dist:8.4f}  {printable(path)}")
    return 0


def printable(path: str) -> str:
    """``path`` as text any output accepts: the bytes of a name that is not UTF-8 (held by Python as
    surrogate escapes) shown as ``\\xNN``, instead of failing to print."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
