"""Streaming, resumable, multi-process extraction of a gallery (``mbf extract``).

The sorted file list is cut into shards of ``shard_size`` images. Shard ``i`` is embedded by
rank ``i % world_size`` (torchrun; one process otherwise) and written atomically to
``<work>/shard-<i>.npy``, so memory stays at one shard and a killed run loses at most the
shards in progress. The work folder (``OUT.parts`` beside an .npz, ``OUT/parts`` inside a
folder gallery) holds ``manifest.json``: the weights' SHA-256, the model card, the config, the
file list's hash, the shard size and the storage dtype. A rerun with the same manifest skips
the finished shards; one with anything else is refused before anything is written. When all
shards exist, rank 0 merges them into the gallery (see :mod:`mbf.retrieval.gallery`) and
removes the work folder.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..engine.distributed import DistInfo, barrier
from ..errors import InputError
from .gallery import GALLERY_JSON, write_npz

log = logging.getLogger(__name__)

DTYPES = ("float32", "float16")
SHARD_SIZE = 4096
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class OutputLayout:
    """Where a gallery and its work folder go: ``OUT`` ending in .npz, or a folder."""

    out: Path

    @property
    def is_npz(self) -> bool:
        return self.out.suffix.lower() == ".npz"

    @property
    def work(self) -> Path:
        return self.out.with_name(self.out.name + ".parts") if self.is_npz else self.out / "parts"

    def finished(self) -> bool:
        return self.out.is_file() if self.is_npz else (self.out / GALLERY_JSON).is_file()

    def check(self, overwrite: bool) -> None:
        """Refuse an output that exists (unless ``overwrite``) or is not ours to write into."""
        out = self.out
        if self.is_npz and out.is_dir():
            raise InputError(f"output {out} is a directory; an .npz path or a gallery folder was expected")
        if not self.is_npz:
            if out.exists() and not out.is_dir():
                raise InputError(f"output {out} is a file; give a folder for the gallery or a path ending in .npz")
            ours = {GALLERY_JSON, "feats.npy", "paths.txt", "parts"}
            if out.is_dir() and any(p.name not in ours and not _merge_temporary(p.name) for p in out.iterdir()):
                raise InputError(f"output folder {out} holds files that are not an mbf gallery; choose another")
        if self.finished() and not overwrite:
            raise InputError(f"gallery {out} already exists (pass --overwrite to replace it)")


_MERGE_TEMPORARIES = (".feats.tmp-", ".paths.tmp-", f".{GALLERY_JSON}.tmp-")  # what a killed merge leaves


def _merge_temporary(name: str) -> bool:
    return name.startswith(_MERGE_TEMPORARIES)


def shard_path(work: Path, index: int) -> Path:
    return work / f"shard-{index:06d}.npy"


def list_hash(paths: list[str]) -> str:
    return hashlib.sha256("\n".join(paths).encode("utf-8")).hexdigest()


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}")
    return out


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def _save_shard(path: Path, feats: np.ndarray) -> None:
    """One finished shard, written under a temporary name and moved into place."""
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.npy")
    np.save(tmp, feats)
    os.replace(tmp, path)


def prepare(layout: OutputLayout, manifest: dict, info: DistInfo) -> list[int]:
    """Check (every rank) and write (rank 0) the work folder; the shards still to embed on this rank."""
    work = layout.work
    num_shards = manifest["shards"]
    done = {i for i in range(num_shards) if shard_path(work, i).is_file()}
    manifest_file = work / MANIFEST
    if manifest_file.is_file():
        try:
            old = json.loads(manifest_file.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"{manifest_file} is unreadable ({exc}); remove {work} to start over") from None
        differs = _differences(old, manifest)
        if differs and done:
            raise InputError(
                f"{work} holds {len(done)} finished shards of an extraction with other settings ({', '.join(differs)}); "
                f"resume it with the same weights, config and images, or remove {work} to start over"
            )
        if differs:
            done = set()
    elif done:
        raise InputError(f"{work} holds shards but no {MANIFEST} to say what made them; remove {work} to start over")
    if info.is_main:
        work.mkdir(parents=True, exist_ok=True)
        if not done:  # nothing finished yet: (re)write the manifest
            _write_json(manifest_file, manifest)
    barrier(info)
    return [i for i in range(num_shards) if i % info.world_size == info.rank and i not in done]


def embed_shards(embedder, paths: list[str], work: Path, todo: list[int], shard_size: int, dtype: str,
                 num_workers: int = 0, progress: bool = True) -> None:
    """Embed the shards ``todo`` of ``paths`` and write each as soon as it is complete."""
    if not todo:
        return
    spans = [(i, i * shard_size, min((i + 1) * shard_size, len(paths))) for i in todo]
    files = [p for _, start, stop in spans for p in paths[start:stop]]
    loader = embedder.file_loader(files, num_workers)
    pending, filled, current = [], 0, 0  # the shard being filled: its pieces, rows so far, its place in spans
    with tqdm(total=len(files), desc="extract", disable=not progress, dynamic_ncols=True) as bar:
        for images, cams in loader:
            feats = embedder.embed_loaded(images, cams).astype(dtype)
            bar.update(len(feats))
            while len(feats):
                index, start, stop = spans[current]
                take = min(stop - start - filled, len(feats))
                pending.append(feats[:take])
                feats, filled = feats[take:], filled + take
                if filled == stop - start:
                    _save_shard(shard_path(work, index), np.concatenate(pending))
                    pending, filled, current = [], 0, current + 1


def merge(layout: OutputLayout, paths: list[str], manifest: dict, meta: dict) -> Path:
    """All shards -> the gallery (streamed into a memory map for a folder); the work folder removed."""
    work, out, dim = layout.work, layout.out, manifest["dim"]
    missing = [i for i in range(manifest["shards"]) if not shard_path(work, i).is_file()]
    if missing:
        raise InputError(f"{work}: shards {missing[:8]} are missing; rerun the same `mbf extract` to finish them")
    meta = {**meta, "dim": dim, "count": len(paths), "dtype": manifest["dtype"]}
    shards = [_ShardSpec(shard_path(work, i), min(manifest["shard_size"], len(paths) - i * manifest["shard_size"]),
                         dim, manifest["dtype"]) for i in range(manifest["shards"])]
    if layout.is_npz:
        write_npz(out, np.concatenate([s.load() for s in shards]), paths, meta)
    else:
        (out / GALLERY_JSON).unlink(missing_ok=True)  # --overwrite: incomplete until the new one is written
        tmp, text = out / f".feats.tmp-{os.getpid()}.npy", out / f".paths.tmp-{os.getpid()}"
        try:
            feats = np.lib.format.open_memmap(tmp, mode="w+", dtype=manifest["dtype"], shape=(len(paths), dim))
            row = 0
            for spec in shards:
                feats[row:row + spec.rows] = spec.load()
                row += spec.rows
            feats.flush()
            del feats
            os.replace(tmp, out / "feats.npy")
            text.write_text("\n".join(paths), encoding="utf-8")
            os.replace(text, out / "paths.txt")
            _write_json(out / GALLERY_JSON, meta)
        finally:
            tmp.unlink(missing_ok=True)
            text.unlink(missing_ok=True)
        for stale in out.iterdir():  # left by a merge that was killed before this one
            if _merge_temporary(stale.name):
                stale.unlink()
    shutil.rmtree(work)
    return out


@dataclass(frozen=True)
class _ShardSpec:
    path: Path
    rows: int
    dim: int
    dtype: str

    def load(self) -> np.ndarray:
        """The finished shard, InputError naming it when it is not the rows x dim array it should be."""
        try:
            shard = np.load(self.path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"{self.path} is unreadable ({exc}); remove it and rerun to embed it again") from None
        if shard.shape != (self.rows, self.dim) or shard.dtype != np.dtype(self.dtype):
            raise InputError(f"{self.path} holds {shard.dtype} {shard.shape}, expected {self.dtype} "
                             f"({self.rows}, {self.dim}); remove it and rerun to embed it again")
        return shard


def extract_gallery(embedder, paths: list[str], out: str | os.PathLike, fingerprint: dict, meta: dict,
                    shard_size: int = SHARD_SIZE, dtype: str = "float32", info: DistInfo = DistInfo(),
                    num_workers: int = 0, overwrite: bool = False, progress: bool = True) -> Path | None:
    """Embed ``paths`` into the gallery ``out``; the merged gallery's path on rank 0, None elsewhere.

    ``fingerprint`` identifies the model (weights hash, card, config); ``meta`` is stored in the
    gallery (config_file, weights, opts, feat_norm).
    """
    if dtype not in DTYPES:
        raise InputError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if shard_size < 1:
        raise InputError(f"--shard_size must be at least 1, got {shard_size}")
    if not paths:
        raise InputError(f"no images to extract into {out}")
    if any("\n" in p for p in paths):
        raise InputError("image paths with line breaks cannot be stored in a gallery")
    layout = OutputLayout(Path(out))
    layout.check(overwrite)
    manifest = {**fingerprint, "dim": embedder.dim, "images": {"count": len(paths), "sha256": list_hash(paths)},
                "shard_size": shard_size, "shards": -(-len(paths) // shard_size), "dtype": dtype}
    todo = prepare(layout, manifest, info)
    skipped = len(range(info.rank, manifest["shards"], info.world_size)) - len(todo)
    log.info("rank %d of %d: %d shards of %d images to embed%s", info.rank, info.world_size, len(todo), shard_size,
             f" ({skipped} finished before, skipped)" if skipped else "")
    embed_shards(embedder, paths, layout.work, todo, shard_size, dtype, num_workers, progress and info.is_main)
    barrier(info)
    if not info.is_main:
        return None
    return merge(layout, paths, manifest, meta)
