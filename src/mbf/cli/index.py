"""``mbf index``: a FAISS index of a gallery from ``mbf extract``, for ``mbf search --gallery INDEX``.

``--kind flat`` is exact (the brute-force results); ``--kind ivfpq`` is approximate and
compressed (PCA, inverted lists of product-quantised codes, re-scoring) for galleries that
do not fit in memory. See :mod:`mbf.retrieval.faiss_index`.
"""
from __future__ import annotations

import logging
import time

HELP = "index a gallery: mbf index --gallery feats.npz|DIR --out INDEX_DIR [--kind flat|ivfpq]"

log = logging.getLogger("mbf.index")


def add_arguments(parser) -> None:
    parser.add_argument("--gallery", required=True, help="gallery written by `mbf extract` (.npz or folder)")
    parser.add_argument("--out", required=True, help="index folder to write")
    parser.add_argument("--kind", default="flat", choices=("flat", "ivfpq"), help="flat: exact; ivfpq: approximate")
    parser.add_argument("--pca", type=int, default=None, help="ivfpq: projected dims (default 512 when D > 512, 0: none)")
    parser.add_argument("--nlist", type=int, default=None, help="ivfpq: inverted lists (default sqrt(N))")
    parser.add_argument("--pq_m", type=int, default=None, help="ivfpq: PQ bytes per descriptor (default width/16)")
    parser.add_argument("--nprobe", type=int, default=None,
                        help="ivfpq: lists visited per query (default: nlist / 16 as a power of two, at least 16)")
    parser.add_argument("--k_factor", type=int, default=None,
                        help="ivfpq: codes re-scored with the 8-bit copies, per result (default 16)")
    parser.add_argument("--rerank_factor", type=int, default=None,
                        help="ivfpq: candidates `mbf search --rerank` re-scores exactly, per result (default 2)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing index folder")


def run(args) -> int:
    # deferred (see mbf.cli): `mbf --help` imports every subcommand module, not torch
    from ..runtime import setup_logging
    from ..retrieval.faiss_index import build_index, check_output
    from ..retrieval.gallery import Gallery

    setup_logging(True)
    gallery = Gallery.load(args.gallery)
    check_output(args.out, args.overwrite)  # before the (possibly long) build, as save() checks it
    start = time.perf_counter()
    index = build_index(gallery, args.kind, pca=args.pca, nlist=args.nlist, m=args.pq_m, nprobe=args.nprobe,
                        k_factor=args.k_factor, rerank_factor=args.rerank_factor)
    out = index.save(args.out, gallery.paths, args.overwrite)
    size = sum(f.stat().st_size for f in out.iterdir())  # what was written, not serialised a second time
    log.info("%s index of %d descriptors (%d-d) written to %s in %.1f s, %.1f MiB on disk", args.kind, index.ntotal,
             gallery.dim, out, time.perf_counter() - start, size / 2**20)
    return 0
