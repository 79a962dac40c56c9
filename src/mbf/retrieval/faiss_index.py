"""FAISS indexes of extracted galleries (``mbf index``) and search in them.

Two kinds:
- ``flat``: exact. Inner product when the descriptors are L2-normalised (TEST.FEAT_NORM
  'yes': cosine), squared Euclidean otherwise. Distances are reported as squared Euclidean
  (2 - 2 cos for unit vectors), so results and distances are those of the brute-force search.
- ``ivfpq``: approximate and compressed, for galleries that do not fit in memory. The
  descriptors are first projected on their ``pca`` leading principal components (fitted on a
  sample), then an inverted file of ``nlist`` lists holds product-quantised codes (``m``
  bytes each); a query visits ``nprobe`` lists, and the ``k_factor * k`` best codes are
  re-scored with 8-bit scalar-quantised copies of the projected descriptors (``pca`` bytes
  each). Memory per descriptor: about m + pca + 8 bytes (552 for the defaults at 6,912-d),
  against 4 x D for the raw float32. The projection drops what lies outside the leading
  components, which can decide near-ties; ``rerank`` (``mbf search --rerank``) re-scores the
  ``rerank_factor * k`` best exactly from the gallery's descriptors on disk, reading only
  those rows (docs/BENCHMARKS.md measures both at a million descriptors).

An index folder holds ``index.faiss``, ``index.json`` (a JSON object: kind, parameters, the
gallery's model and config, so a query is embedded the same way), ``paths.txt`` (as a gallery's:
exact file-system names) and, with PCA, ``pca.npz``. It is written as a temporary folder moved
into place, so a reader sees the old index or the new one, never part of one.
"""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..files import atomic_path
from .gallery import (GALLERY_KEYS, Gallery, check_keys, check_queries, named_results, paths_bytes, read_json_object,
                      read_paths)

log = logging.getLogger(__name__)

KINDS = ("flat", "ivfpq")
INDEX_JSON = "index.json"
INDEX_KEYS = {"kind": str, "dim": int, "metric": str, "feat_norm": bool}  # what a search reads
INDEX_OPTIONAL = {"gallery": dict, "params": dict, "count": int}  # gallery: written by `mbf index`
NPROBE_SHARE = 16  # the default nprobe visits about 1 / NPROBE_SHARE of the lists
MIN_IVFPQ = 1000  # descriptors below which the approximate index is not worth (or able) to train


def _faiss():
    try:
        import faiss  # deferred on purpose: the deploy extra is optional
    except ImportError:  # pragma: no cover - installed by the deploy extra
        raise InputError("FAISS is not installed: pip install 'mbf-reid[deploy]'") from None
    return faiss


@dataclass
class IvfPqParams:
    """Parameters of the ``ivfpq`` index; :meth:`defaults` picks them from the gallery size."""

    pca: int = 512  # projected dims (0: no projection)
    nlist: int = 1024
    m: int = 32  # PQ bytes per descriptor
    nbits: int = 8
    k_factor: int = 16  # codes re-scored with the 8-bit copies, per result
    nprobe: int = 16  # lists visited per query (default: nlist / 16 as a power of two, at least 16)
    rerank_factor: int = 2  # with rerank: candidates re-scored from the gallery's descriptors, per result
    train_size: int = 50_000
    pca_sample: int = 8_192

    @classmethod
    def defaults(cls, count: int, dim: int, **overrides) -> "IvfPqParams":
        if count < MIN_IVFPQ:
            raise InputError(f"an ivfpq index needs at least {MIN_IVFPQ} descriptors, the gallery has {count}: "
                             "use --kind flat")
        given = {k: v for k, v in overrides.items() if v is not None}
        p = cls(**given)
        if "pca" not in given:
            p.pca = 512 if dim > 512 else 0
        if not 0 <= p.pca <= dim:
            raise InputError(f"--pca must be between 0 and the descriptor size {dim}, got {p.pca}")
        width = p.pca or dim
        train = min(count, p.train_size)
        fitted_on = min(train, p.pca_sample)  # the projection's sample gives at most this many components
        if p.pca > fitted_on:
            raise InputError(f"--pca {p.pca} is more components than the {fitted_on} descriptors the projection is "
                             f"fitted on; use --pca {fitted_on} or less")
        if "nlist" not in given:
            p.nlist = max(1, min(int(math.sqrt(count)), train // 39))
        if "m" not in given:
            p.m = max(d for d in range(1, max(1, width // 16) + 1) if width % d == 0)
        if width % p.m:
            raise InputError(f"--pq_m {p.m} must divide the indexed width {width}")
        if "nprobe" not in given:  # a fixed share of the lists keeps recall as the gallery grows
            p.nprobe = min(p.nlist, max(16, 2 ** round(math.log2(max(p.nlist / NPROBE_SHARE, 1)))))
        if "nbits" not in given:
            p.nbits = int(min(8, max(4, math.floor(math.log2(train / 39)))))
        if p.nlist > train or 2 ** p.nbits > train:
            raise InputError(f"{train} training descriptors are too few for {p.nlist} lists / {2 ** p.nbits} PQ centroids")
        return p


class Pca:
    """x -> (x - mean) @ components.T: the ``width`` leading principal directions of a sample."""

    def __init__(self, mean: np.ndarray, components: np.ndarray):
        self.mean, self.components = mean.astype(np.float32), np.ascontiguousarray(components, dtype=np.float32)

    @classmethod
    def fit(cls, sample: np.ndarray, width: int, seed: int = 0) -> "Pca":
        x = torch.from_numpy(np.asarray(sample, dtype=np.float32))
        mean = x.mean(0)
        torch.manual_seed(seed)
        _, _, v = torch.svd_lowrank(x - mean, q=min(width + 16, *x.shape), niter=2)
        return cls(mean.numpy(), v[:, :width].T.numpy())

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray((np.asarray(x, dtype=np.float32) - self.mean) @ self.components.T)


class SearchIndex:
    """A FAISS index over a gallery, with the projection, parameters and paths it needs."""

    def __init__(self, index, meta: dict, paths: list[str] | None = None, pca: Pca | None = None):
        self.index, self.meta, self.paths, self.pca = index, meta, paths, pca

    @property
    def dim(self) -> int:
        return int(self.meta["dim"])

    @staticmethod
    def is_index(path: str | os.PathLike) -> bool:
        return (Path(path) / INDEX_JSON).is_file()

    # ------------------------------------------------------------------ building
    @classmethod
    def create(cls, kind: str, dim: int, feat_norm: bool, train: np.ndarray | None = None,
               params: IvfPqParams | None = None) -> "SearchIndex":
        """An empty trained index; ``train`` (a sample of the gallery) and ``params`` for ``ivfpq``."""
        faiss = _faiss()
        if kind == "flat":
            index = faiss.IndexFlatIP(dim) if feat_norm else faiss.IndexFlatL2(dim)
            meta = {"kind": kind, "dim": dim, "metric": "inner_product" if feat_norm else "l2", "feat_norm": feat_norm}
            return cls(index, meta)
        if kind != "ivfpq":
            raise InputError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
        p = params
        train = np.asarray(train, dtype=np.float32)
        pca = Pca.fit(train[: p.pca_sample], p.pca) if p.pca else None
        width = p.pca or dim
        index = faiss.index_factory(width, f"IVF{p.nlist},PQ{p.m}x{p.nbits},Refine(SQ8)", faiss.METRIC_L2)
        index.train(pca(train) if pca else train)
        meta = {"kind": kind, "dim": dim, "metric": "l2", "feat_norm": feat_norm, "params": asdict(p)}
        return cls(index, meta, pca=pca)

    def add(self, block: np.ndarray) -> None:
        block = np.ascontiguousarray(block, dtype=np.float32)
        self.index.add(self.pca(block) if self.pca else block)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def memory_bytes(self) -> int:
        """Size of the serialised index plus the projection (what a search holds in memory)."""
        faiss = _faiss()
        size = int(faiss.serialize_index(self.index).size)
        return size + (self.pca.components.nbytes + self.pca.mean.nbytes if self.pca else 0)

    # ------------------------------------------------------------------ files
    def save(self, folder: str | os.PathLike, paths: list[str], overwrite: bool = False) -> Path:
        """Write the index folder (a temporary folder moved into place)."""
        faiss = _faiss()
        folder = check_output(folder, overwrite)
        with atomic_path(folder, folder=True) as tmp:
            try:
                faiss.write_index(self.index, str(tmp / "index.faiss"))
            except RuntimeError as exc:  # FAISS reports write errors (a full disk) this way: one OSError of the folder
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
                raise OSError(f"FAISS could not write index.faiss ({reason})") from None
            # plain writes inside the temporary folder: it is moved into place whole, and a failure names the index
            if self.pca is not None:
                np.savez(tmp / "pca.npz", mean=self.pca.mean, components=self.pca.components)
            (tmp / "paths.txt").write_bytes(paths_bytes(paths))
            (tmp / INDEX_JSON).write_text(json.dumps({**self.meta, "count": self.ntotal}, indent=1) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "SearchIndex":
        faiss = _faiss()
        folder = Path(folder)
        meta = read_index_json(folder / INDEX_JSON)
        try:
            index = faiss.read_index(str(folder / "index.faiss"))
            paths = read_paths(folder / "paths.txt", index.ntotal)
            pca = None
            if (folder / "pca.npz").is_file():
                with np.load(folder / "pca.npz", allow_pickle=False) as data:
                    pca = Pca(data["mean"], data["components"])
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise InputError(f"{folder} is not an index written by `mbf index`: {exc}") from None
        return cls(index, meta, paths, pca)

    # ------------------------------------------------------------------ search
    def search(self, queries: np.ndarray, topk: int, nprobe: int | None = None, k_factor: int | None = None,
               rerank=None, rerank_factor: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Squared Euclidean distances and gallery indices [Q, k] (-1 where fewer were found).

        ``ivfpq``: ``nprobe`` lists are visited and their ``k_factor * k`` best product-quantised
        codes re-scored with the 8-bit copies (None: the index's parameters). ``rerank``: the
        gallery's descriptors (e.g. :meth:`Gallery.rows` of the folder gallery it was built
        from); the ``rerank_factor * k`` best by the 8-bit copies are then re-scored exactly.
        """
        faiss = _faiss()
        if topk < 1:
            raise InputError(f"topk must be at least 1, got {topk}")
        q = check_queries(queries, self.dim, "the index")
        k = min(topk, self.ntotal)
        if self.meta["kind"] == "ivfpq":
            params = self.meta["params"]
            faiss.extract_index_ivf(self.index).nprobe = int(nprobe or params["nprobe"])
            faiss.downcast_index(self.index).k_factor = float(k_factor or params["k_factor"])
            projected = self.pca(q) if self.pca else q
            if rerank is not None:
                if rerank.shape != (self.ntotal, self.dim):
                    raise InputError(f"re-ranking needs the {self.ntotal} x {self.dim} gallery descriptors, "
                                     f"got {tuple(rerank.shape)}")
                factor = int(rerank_factor or params.get("rerank_factor", IvfPqParams.rerank_factor))
                _, candidates = self.index.search(projected, min(k * factor, self.ntotal))
                return rescore(q, candidates, rerank, k)
            q = projected
        dist, idx = self.index.search(q, k)
        if self.meta["metric"] == "inner_product":  # unit vectors: |q - x|^2 = 2 - 2 q.x
            dist = np.maximum((q * q).sum(1, keepdims=True) + 1.0 - 2.0 * dist, 0.0)
        return dist, idx

    def results(self, queries: np.ndarray, topk: int, **kwargs) -> list[list[tuple[str, float]]]:
        return named_results(self.paths, *self.search(queries, topk, **kwargs))


def read_index_json(file: Path) -> dict:
    """``index.json``: InputError naming it unless it is an object with the keys a search reads."""
    what = "the description of an index written by `mbf index`"
    meta = read_json_object(file, what, INDEX_KEYS, INDEX_OPTIONAL)
    if meta["kind"] not in KINDS:
        raise InputError(f"{file}: 'kind' is {meta['kind']!r}, expected one of {', '.join(KINDS)} ({what})")
    if meta["kind"] == "ivfpq":
        check_keys(meta, str(file), what, {"params": dict})
    if "gallery" in meta:
        check_keys(meta["gallery"], f"{file} 'gallery'", "the model of the gallery indexed",
                   optional={**GALLERY_KEYS, "source": str})
    return meta


def check_output(folder: str | os.PathLike, overwrite: bool = False) -> Path:
    """``folder`` as a Path once it is known that an index may be written there; InputError if not."""
    folder = Path(folder)
    if folder.exists() and not overwrite:
        raise InputError(f"index {folder} already exists (pass --overwrite to replace it)")
    if folder.exists() and not (folder / INDEX_JSON).is_file():
        raise InputError(f"{folder} exists and is not an mbf index folder; choose another output")
    return folder


def rescore(queries: np.ndarray, candidates: np.ndarray, feats, k: int,
            block: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest of each query's candidate rows by exact squared Euclidean distance.

    ``feats`` is indexed with sorted row numbers (an array, a memory map or a
    :class:`~mbf.retrieval.gallery.NpyRows`): a block of queries reads the union of its
    candidates once and scores it with one matrix product.
    """
    dist = np.full((len(queries), k), np.inf, np.float32)
    idx = np.full((len(queries), k), -1, np.int64)
    for s in range(0, len(queries), block):
        cand = candidates[s:s + block]
        valid = cand >= 0  # -1: fewer candidates than asked for
        rows, inverse = np.unique(cand[valid], return_inverse=True)
        where = np.zeros(cand.shape, np.int64)
        where[valid] = inverse.reshape(-1)
        vecs = np.asarray(feats[rows], dtype=np.float32)  # [U, D]
        q = queries[s:s + block]
        # |q - x|^2 in NumPy, like the FAISS calls around it: a torch kernel here would wake a second
        # OpenMP thread pool that fights FAISS's for the cores (4x slower single queries on 2 cores)
        d = (q * q).sum(1)[:, None] + (vecs * vecs).sum(1)[None, :] - 2.0 * (q @ vecs.T)  # [b, U]
        d = np.take_along_axis(d, where, 1) if len(rows) else np.zeros(cand.shape, np.float32)
        d[~valid] = np.inf
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        dist[s:s + block, : order.shape[1]] = np.maximum(np.take_along_axis(d, order, 1), 0.0)
        idx[s:s + block, : order.shape[1]] = np.take_along_axis(cand, order, 1)
    return dist, idx


def train_sample(gallery: Gallery, size: int, seed: int = 0) -> np.ndarray:
    """``size`` descriptors of the gallery drawn without replacement (rows read in order)."""
    if size >= len(gallery):
        return np.asarray(gallery.feats, dtype=np.float32)
    rows = np.sort(np.random.default_rng(seed).choice(len(gallery), size, replace=False))
    return np.asarray(gallery.feats[rows], dtype=np.float32)


def build_index(gallery: Gallery, kind: str = "flat", chunk: int = 65536, **overrides) -> SearchIndex:
    """An index of every descriptor of ``gallery``, read ``chunk`` rows at a time."""
    params = IvfPqParams.defaults(len(gallery), gallery.dim, **overrides) if kind == "ivfpq" else None
    sample = train_sample(gallery, params.train_size) if params else None
    index = SearchIndex.create(kind, gallery.dim, gallery.feat_norm, sample, params)
    del sample
    for _, block in gallery.chunks(chunk):
        index.add(block)
    index.meta["gallery"] = {k: v for k, v in gallery.meta().items() if k not in ("dim", "count")}
    index.meta["gallery"]["source"] = os.path.abspath(gallery.source) if gallery.source else ""
    index.paths = gallery.paths
    return index
