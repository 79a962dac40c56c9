"""Streaming, resumable, multi-process extraction of a gallery (``mbf extract``).

The sorted file list is cut into shards of ``shard_size`` images. Shard ``i`` is embedded by
rank ``i % world_size`` (torchrun; one process otherwise) and written whole or not at all to
``<work>/shard-<i>.npy``, so memory stays at one shard and a killed run (or a full disk) loses at
most the shards in progress. The work folder (``OUT.parts`` beside an .npz, ``OUT/parts`` inside
a folder gallery) holds ``manifest.json``: the weights' SHA-256, the model card, the config, the
file list's hash, the shard size and the storage dtype. A rerun with the same manifest skips
the finished shards; one with anything else is refused before anything is written. When all
shards exist, rank 0 merges them into the gallery (see :mod:`mbf.retrieval.gallery`) and
removes the work folder.

One extraction writes an output at a time: rank 0 holds the lock ``.<name>.mbf-lock`` beside
``OUT`` (outside a folder gallery, whose content stays the gallery's) from before the output is
checked until the gallery is merged, and a second extraction to the same output is refused at
once with the holder's PID and start time (the other ranks take no lock: they only write their
shards). On taking the lock it removes the temporaries a killed extraction left.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

from ..config import differences
from ..distributed import DistInfo, barrier
from ..errors import InputError
from ..files import (FolderLock, atomic_write, is_temporary, make_folder, remove_stale_temporaries,
                     removing_new_folders, write_json)
from .gallery import GALLERY_JSON, read_json_object, write_npz, write_paths

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

    @property
    def lock_file(self) -> Path:
        return self.out.parent / f".{self.out.name}.mbf-lock"

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
            if out.is_dir() and any(p.name not in ours and not is_temporary(p.name) for p in out.iterdir()):
                raise InputError(f"output folder {out} holds files that are not an mbf gallery; choose another")
        if self.finished() and not overwrite:
            raise InputError(f"gallery {out} already exists (pass --overwrite to replace it)")

    def remove_stale_temporaries(self) -> list[str]:
        """Remove what a killed extraction left half-written; only for the holder of :meth:`lock`."""
        removed = remove_stale_temporaries(self.work)
        if not self.is_npz:
            return removed + remove_stale_temporaries(self.out)
        own = f".{self.out.name}.tmp-"  # beside an .npz: only its own temporaries, the folder is not ours
        for entry in self.out.parent.glob(f"{own}*") if self.out.parent.is_dir() else ():
            if is_temporary(entry.name) and entry.is_file():
                entry.unlink(missing_ok=True)
                removed.append(entry.name)
        return removed

    def lock(self) -> FolderLock:
        return FolderLock(self.lock_file, f"gallery {self.out}",
                          "wait for that extraction to end (a rerun then resumes or refuses it), or give another --out")


_HELD: set[Path] = set()  # lock files this process holds (hold_output is re-entrant)


@contextlib.contextmanager
def hold_output(layout: OutputLayout, info: DistInfo = DistInfo()) -> Iterator[None]:
    """Rank 0 holds the output's lock for the block and first removes what a killed extraction left;
    other ranks take nothing, and within a block that holds it already this is a no-op.

    Folders created for the lock file are removed again when the block fails (a refused run
    leaves nothing).
    """
    key = Path(os.path.abspath(layout.lock_file))
    if not info.is_main or key in _HELD:
        yield
        return
    with removing_new_folders(key.parent), layout.lock():
        _HELD.add(key)
        try:
            removed = layout.remove_stale_temporaries()
            if removed:
                log.info("removed %d temporary files a killed extraction left: %s", len(removed), ", ".join(removed))
            yield
        finally:
            _HELD.discard(key)


def shard_path(work: Path, index: int) -> Path:
    return work / f"shard-{index:06d}.npy"


def list_hash(paths: list[str]) -> str:
    return hashlib.sha256("\n".join(paths).encode("utf-8", "surrogateescape")).hexdigest()


def _save_shard(path: Path, feats: np.ndarray) -> None:
    """One finished shard, written whole or not at all."""
    with atomic_write(path) as fh:
        np.save(fh, feats, allow_pickle=False)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def prepare(layout: OutputLayout, manifest: dict, info: DistInfo) -> list[int]:
    """Check (every rank) and write (rank 0) the work folder; the shards still to embed on this rank."""
    work = layout.work
    num_shards = manifest["shards"]
    done = {i for i in range(num_shards) if shard_path(work, i).is_file()}
    manifest_file = work / MANIFEST
    if manifest_file.is_file():
        old = read_json_object(manifest_file, f"the manifest of an extraction (remove {work} to start over)")
        differs = list(differences(old, manifest, missing_differs=True))
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
        make_folder(work)
        if not done:  # nothing finished yet: (re)write the manifest
            write_json(manifest_file, manifest, indent=1)
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
    with tqdm(total=len(files), desc="extract", disable=None if progress else True, dynamic_ncols=True) as bar:
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
    """All shards -> the gallery (a folder's ``feats.npy`` streamed one shard at a time); the work folder removed."""
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
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(manifest["dtype"])), "fortran_order": False,
                  "shape": (len(paths), dim)}
        with atomic_write(out / "feats.npy") as fh:  # streamed: one shard in memory; a full disk is an OSError
            np.lib.format.write_array_header_1_0(fh, header)
            for spec in shards:
                fh.write(np.ascontiguousarray(spec.load()).data)
        write_paths(out / "paths.txt", paths)
        write_json(out / GALLERY_JSON, meta, indent=1)
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
    with hold_output(layout, info):
        layout.check(overwrite)
        manifest = {**fingerprint, "dim": embedder.dim, "images": {"count": len(paths), "sha256": list_hash(paths)},
                    "shard_size": shard_size, "shards": -(-len(paths) // shard_size), "dtype": dtype}
        todo = prepare(layout, manifest, info)
        skipped = len(range(info.rank, manifest["shards"], info.world_size)) - len(todo)
        images = sum(min(shard_size, len(paths) - i * shard_size) for i in todo)
        log.info("rank %d of %d: %s (%s) to embed%s", info.rank, info.world_size, _plural(len(todo), "shard"),
                 _plural(images, "image"), f" ({skipped} finished before, skipped)" if skipped else "")
        embed_shards(embedder, paths, layout.work, todo, shard_size, dtype, num_workers, progress and info.is_main)
        barrier(info)
        if not info.is_main:
            return None
        return merge(layout, paths, manifest, meta)
