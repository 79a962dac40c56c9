"""Extracted galleries (``mbf extract``'s output) and exact search in them.

Two layouts hold the same fields:
- ``gallery.npz`` (small galleries, loaded whole): ``feats`` [N, D] (float32 or float16),
  ``paths``, ``config_file``, ``weights``, ``opts`` and ``feat_norm``;
- a folder (any size, memory-mapped): ``feats.npy`` [N, D], ``paths.txt`` (one per line) and
  ``gallery.json`` (a JSON object) with the rest; ``gallery.json`` is written last and marks it
  complete.
Paths are kept exactly as the file system gave them: a name that is not valid UTF-8 is held by
Python with surrogate escapes and written back as its original bytes (``paths.txt`` is UTF-8
with ``surrogateescape``). Every file is written whole or not at all (:mod:`mbf.files`).
Descriptors are L2-normalised when ``feat_norm`` (TEST.FEAT_NORM 'yes'); the config file,
overrides and weights are what ``mbf search`` embeds a query with.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..evaluation import euclidean_distance
from ..files import atomic_write, write_bytes

GALLERY_JSON = "gallery.json"
GALLERY_KEYS = {"config_file": str, "weights": str, "opts": list, "feat_norm": bool}  # gallery.json, as used here
SEARCH_CHUNK = 65536  # gallery rows per distance block of the exact search


@dataclass
class Gallery:
    feats: np.ndarray  # [N, D], float32 or float16, possibly a read-only memory map
    paths: list[str]
    config_file: str = ""
    weights: str = ""
    opts: list[str] = field(default_factory=list)
    feat_norm: bool = True
    source: str = ""

    @property
    def dim(self) -> int:
        return int(self.feats.shape[1])

    def __len__(self) -> int:
        return len(self.paths)

    def meta(self) -> dict:
        """The fields besides descriptors and paths (what an index built from it keeps)."""
        return {"config_file": self.config_file, "weights": self.weights, "opts": list(self.opts),
                "feat_norm": self.feat_norm, "dim": self.dim, "count": len(self)}

    def rows(self) -> "np.ndarray | NpyRows":
        """Random access to single rows: a folder gallery's ``feats.npy`` read row by row with
        ``pread`` (only the bytes asked for, no read-ahead mapped into this process), else the array."""
        return NpyRows(self.feats) if isinstance(self.feats, np.memmap) else self.feats

    def chunks(self, size: int = SEARCH_CHUNK):
        """(start, float32 block) over the gallery, ``size`` rows at a time (writable: a read-only memory
        map's rows are copied, as torch needs)."""
        for start in range(0, len(self), size):
            yield start, np.require(self.feats[start:start + size], np.float32, ["C", "W"])

    # ------------------------------------------------------------------ reading
    @classmethod
    def load(cls, path: str | os.PathLike) -> "Gallery":
        path = Path(path)
        if path.is_dir():
            return cls._load_folder(path)
        if not path.is_file():
            raise InputError(f"gallery not found: {path} (make one with `mbf extract`)")
        try:
            with np.load(path, allow_pickle=False) as data:
                feats = _check_feats(data["feats"], path)
                feat_norm = bool(data["feat_norm"]) if "feat_norm" in data else _looks_normalised(feats)
                gallery = cls(feats, [str(p) for p in data["paths"]], str(data["config_file"]), str(data["weights"]),
                              [str(o) for o in data["opts"]], feat_norm, str(path))
        except (KeyError, ValueError, OSError) as exc:
            raise InputError(f"{path} is not a gallery written by `mbf extract`: {exc}") from None
        if len(gallery.paths) != feats.shape[0]:
            raise InputError(f"{path}: {feats.shape[0]} descriptors but {len(gallery.paths)} paths")
        return gallery

    @classmethod
    def _load_folder(cls, folder: Path) -> "Gallery":
        meta_file = folder / GALLERY_JSON
        if not meta_file.is_file():
            raise InputError(f"{folder} holds no finished gallery ({GALLERY_JSON} missing): run or resume `mbf extract`")
        meta = read_json_object(meta_file, "the gallery's description", optional=GALLERY_KEYS)
        try:
            feats = _check_feats(np.load(folder / "feats.npy", mmap_mode="r", allow_pickle=False), folder / "feats.npy")
            paths = read_paths(folder / "paths.txt", feats.shape[0])
        except (OSError, ValueError) as exc:
            raise InputError(f"{folder} is not a gallery written by `mbf extract`: {exc}") from None
        return cls(feats, paths, meta.get("config_file", ""), meta.get("weights", ""), list(meta.get("opts", [])),
                   meta.get("feat_norm", True), str(folder))

    # ------------------------------------------------------------------ search
    def search(self, queries: np.ndarray, topk: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact search: squared Euclidean distances and gallery indices [Q, k], nearest first."""
        queries = check_queries(queries, self.dim, self.source)
        return exact_search(self.chunks(search_chunk_rows(len(queries))), queries, topk)

    def results(self, queries: np.ndarray, topk: int) -> list[list[tuple[str, float]]]:
        return named_results(self.paths, *self.search(queries, topk))


class NpyRows:
    """Rows of a 2-D ``.npy`` file read on demand: ``rows[sorted_indices]`` -> [n, D] array.

    Re-scoring candidates touches a few scattered rows of a gallery that may be far larger than
    memory; through a memory map every row faulted in also maps its neighbours (read-ahead),
    and all of it counts as this process's memory. Explicit reads fetch only the rows asked for.
    """

    def __init__(self, source: "str | os.PathLike | np.memmap"):
        """``source``: a ``.npy`` file, or a read-only memory map of one (a folder gallery's ``feats``),
        whose header NumPy has already read: only its file name, data offset, shape and dtype are used."""
        if not isinstance(source, np.memmap):
            try:
                source = np.load(source, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise InputError(f"{source} is not a descriptor file written by `mbf extract`: {exc}") from None
        self.path = Path(source.filename)
        if source.ndim != 2 or not source.flags.c_contiguous:
            raise InputError(f"{self.path}: expected a C-ordered 2-D array, got shape {source.shape}")
        self.shape, self.dtype, self.offset = tuple(source.shape), source.dtype, int(source.offset)
        self.row_bytes = self.shape[1] * self.dtype.itemsize
        self._fd = os.open(self.path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows) -> np.ndarray:
        if self._fd is None:
            raise InputError(f"{self.path}: the row reader is closed")
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(rows) and (rows.min() < 0 or rows.max() >= self.shape[0]):
            raise IndexError(f"row out of range for {self.path} with {self.shape[0]} rows")
        out = np.empty((len(rows), self.shape[1]), self.dtype)
        view = memoryview(out.view(np.uint8).reshape(-1))
        for i, r in enumerate(rows.tolist()):
            pos = i * self.row_bytes
            got = os.preadv(self._fd, [view[pos:pos + self.row_bytes]], self.offset + r * self.row_bytes)
            if got != self.row_bytes:  # the file shrank since its header was read: never return unread memory
                raise InputError(f"{self.path} is shorter than its header says ({self.shape[0]} rows): "
                                 f"row {r} could not be read")
        return out

    def close(self) -> None:
        """Close the file (also done when the object is collected); reading afterwards is an error."""
        fd, self._fd = getattr(self, "_fd", None), None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> "NpyRows":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        self.close()


def paths_bytes(paths: list[str]) -> bytes:
    """``paths`` one per line (no final line break), each exactly as the file system names it."""
    return "\n".join(paths).encode("utf-8", "surrogateescape")


def write_paths(file: Path, paths: list[str]) -> None:
    write_bytes(file, paths_bytes(paths))


def read_paths(file: Path, count: int) -> list[str]:
    """The ``count`` paths of ``file`` (one per line, as :func:`paths_bytes` gives them); InputError if
    it holds another number of them."""
    lines = file.read_bytes().decode("utf-8", "surrogateescape").split("\n")
    if len(lines) == count + 1 and lines[-1] == "":  # one final line break (an edited file): not a path
        lines.pop()
    if len(lines) != count:
        raise InputError(f"{file}: {len(lines)} paths for {count} descriptors")
    return lines


_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", int: "an integer", float: "a number",
               bool: "true or false", type(None): "null"}


def _json_type(value) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def read_json_object(file: Path, what: str, required: dict | None = None, optional: dict | None = None) -> dict:
    """The JSON object in ``file`` (``what`` it should describe); InputError naming the file when it
    cannot be read, is not an object, or lacks a ``required`` key or holds a key of another type
    than ``required`` / ``optional`` say (key -> Python type)."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{file} is unreadable ({exc}); expected {what} as a JSON object") from None
    return check_keys(data, f"{file}", what, required, optional)


def check_keys(data, where: str, what: str, required: dict | None = None, optional: dict | None = None) -> dict:
    """``data`` if it is a dict holding the ``required`` keys, with the types given; InputError saying
    ``where`` otherwise (see :func:`read_json_object`)."""
    required, optional = required or {}, optional or {}
    if not isinstance(data, dict):
        keys = f" with the keys {', '.join(required)}" if required else ""
        raise InputError(f"{where} holds {_json_type(data)}; expected {what}: a JSON object{keys}")
    missing = [key for key in required if key not in data]
    if missing:
        raise InputError(f"{where} lacks the key{'s' * (len(missing) > 1)} {', '.join(missing)}; expected {what} "
                         f"with the keys {', '.join(required)}")
    for key, kind in {**optional, **required}.items():
        value = data.get(key)
        if key in data and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            raise InputError(f"{where}: {key!r} is {_json_type(value)}, expected {_JSON_TYPES[kind]} ({what})")
    return data


def named_results(paths: list[str], dist: np.ndarray, idx: np.ndarray) -> list[list[tuple[str, float]]]:
    """Per query, (path, distance) of each result found (FAISS's -1 for "none" left out)."""
    return [[(paths[i], float(d)) for d, i in zip(drow, irow) if i >= 0] for drow, irow in zip(dist, idx)]


def check_queries(queries: np.ndarray, dim: int, source: str = "the gallery") -> np.ndarray:
    q = np.asarray(queries, dtype=np.float32)
    q = q.reshape(1, -1) if q.ndim == 1 else q
    if q.ndim != 2 or q.shape[1] != dim:
        raise InputError(f"query descriptors must be [Q, {dim}] or [{dim}] for {source or 'the gallery'}, "
                         f"got shape {q.shape}")
    return np.require(q, requirements=["C", "W"])  # a row of a read-only memory map is copied


def exact_search(chunks, queries: np.ndarray, topk: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force k nearest (squared Euclidean, as :func:`mbf.evaluation.euclidean_distance`)
    over ``(start, float32 block)`` chunks, keeping a running top-k; memory: one float32 block of
    gallery rows (a float16 gallery's block is converted) and its distances."""
    if topk < 1:
        raise InputError(f"topk must be at least 1, got {topk}")
    q = torch.from_numpy(queries)
    best_d = torch.empty((len(q), 0))
    best_i = torch.empty((len(q), 0), dtype=torch.long)
    for start, block in chunks:
        d = torch.cat((best_d, euclidean_distance(q, torch.from_numpy(block))), dim=1)
        i = torch.cat((best_i, torch.arange(start, start + block.shape[0]).expand(len(q), -1)), dim=1)
        best_d, order = torch.topk(d, min(topk, d.shape[1]), dim=1, largest=False, sorted=True)
        best_i = i.gather(1, order)
    return best_d.numpy(), best_i.numpy()


def search_chunk_rows(num_queries: int, budget: int = 1 << 25) -> int:
    """Gallery rows per block so that one block of distances stays near ``budget`` floats."""
    return int(min(SEARCH_CHUNK, max(1024, budget // max(num_queries, 1))))


def _check_feats(feats: np.ndarray, source) -> np.ndarray:
    if feats.ndim != 2 or not np.issubdtype(feats.dtype, np.floating):
        raise InputError(f"{source}: descriptors must be a float N x D array (float32 or float16), "
                         f"got {feats.dtype} of shape {feats.shape}")
    return feats


def _looks_normalised(feats: np.ndarray) -> bool:
    norms = np.linalg.norm(np.asarray(feats[:1024], dtype=np.float32), axis=1)
    return bool(len(norms) and np.allclose(norms, 1.0, atol=1e-3))


def write_npz(path: Path, feats: np.ndarray, paths: list[str], meta: dict) -> Path:
    """The .npz layout, written whole or not at all."""
    with atomic_write(path) as fh:
        np.savez(fh, feats=feats, paths=np.array(paths, dtype=str), config_file=np.array(meta["config_file"]),
                 weights=np.array(meta["weights"]), opts=np.array(list(meta["opts"]), dtype=str),
                 feat_norm=np.array(bool(meta["feat_norm"])))
    return path
