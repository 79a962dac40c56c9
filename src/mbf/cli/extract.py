"""``mbf extract``: descriptors of every image under a folder, saved as a gallery.

``--out X.npz`` writes one .npz (small galleries); any other ``--out`` is a folder with a
memory-mappable ``feats.npy`` (any size). Descriptors are written in shards while they are
computed, so memory stays bounded and a killed run resumes where it stopped (same command);
a resume with other weights, config or images is refused. Under torchrun every rank embeds
a disjoint set of shards and rank 0 merges them. The gallery keeps the config file, the
overrides and the weights, so ``mbf search`` can embed a query the same way. A second
``mbf extract`` to the same ``--out`` while one runs is refused with the first one's PID and
start time (lock file ``.<name>.mbf-lock`` beside the output).

A checkpoint is run as the Embedder runs it: float32, or bfloat16 autocast with ``TEST.AMP True``
(the log line and the gallery's ``precision`` say which), each batch of ``TEST.IMS_PER_BATCH``
images fed to the network ``TEST.FORWARD_CHUNK`` at a time.
"""
from __future__ import annotations

import json
import logging
import os

from . import add_config_arguments

HELP = "embed a folder of images: mbf extract --config_file F --weights W --images DIR --out feats.npz|DIR"

log = logging.getLogger("mbf.extract")

# config keys that do not change descriptors (where and how fast they are computed)
_RUNTIME_KEYS = ("DEVICE", "DEVICE_ID", "DIST_TRAIN", "PRETRAIN_CHOICE", "PRETRAIN_PATH")


def add_arguments(parser) -> None:
    parser.add_argument("--weights", required=True, help="trained model (.pth, ours or the reference's) or an .onnx export")
    parser.add_argument("--images", required=True, help="folder of images (searched recursively: jpg, png, tif, ...)")
    parser.add_argument("--out", required=True, help="output gallery: a path ending in .npz, or a folder")
    parser.add_argument("--shard_size", type=int, default=4096, help="images per shard written (default 4096)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16"), help="storage precision")
    parser.add_argument("--workers", type=int, default=None, help="image decoding processes (default DATALOADER.NUM_WORKERS)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing gallery")
    add_config_arguments(parser)


def model_config(cfg) -> dict:
    """The MODEL section without the keys that only say where the model runs."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.MODEL.items() if k not in _RUNTIME_KEYS}


def run(args) -> int:
    # deferred (see mbf.cli): `mbf --help` imports every subcommand module, not torch
    from pathlib import Path

    from ..config import load_config
    from ..data.build import build_num_workers
    from ..distributed import init_distributed, shutdown
    from ..runtime import resolve_device, set_threads, setup_logging
    from ..retrieval import Embedder, list_images
    from ..retrieval.embedder import file_sha256
    from ..retrieval.extraction import OutputLayout, extract_gallery, hold_output

    onnx = args.weights.lower().endswith(".onnx")
    cfg = load_config(args.config_file, args.opts)
    # DATALOADER.NUM_WORKERS set by the user (its cap is then worth a log line), not the seed's default
    configured = bool(args.config_file) or "DATALOADER.NUM_WORKERS" in args.opts[0::2]
    device_type = "cpu" if onnx else cfg.MODEL.DEVICE
    info = init_distributed(device_type)  # a single process without torchrun
    try:
        setup_logging(info.is_main)
        layout = OutputLayout(Path(args.out))
        with hold_output(layout, info):  # rank 0: one extraction per output, from this check to the merge
            layout.check(args.overwrite)
            paths = list_images(args.images)  # fails before the model is built when there is nothing to embed
            if onnx:
                embedder = Embedder.from_onnx(args.weights, batch_size=int(cfg.TEST.IMS_PER_BATCH),
                                              threads=set_threads(cfg.MODEL.CPU_THREADS),
                                              chunk=int(cfg.TEST.FORWARD_CHUNK))
            else:
                device = resolve_device(cfg.MODEL.DEVICE, cfg.MODEL.DEVICE_ID,
                                        info.local_rank if info.enabled else None)
                embedder = Embedder.from_checkpoint(cfg, args.weights, device=device)  # threads: MODEL.CPU_THREADS
            fingerprint = {
                "weights_sha256": file_sha256(args.weights),
                "card": json.loads(embedder.card.to_json()),
                "config": {} if onnx else model_config(cfg),
                "precision": embedder.precision,  # bfloat16 and float32 descriptors do not mix in one gallery
            }
            # absolute paths, so `mbf search` finds the model from any working directory
            meta = {"config_file": os.path.abspath(args.config_file) if args.config_file and not onnx else "",
                    "weights": os.path.abspath(args.weights), "opts": [] if onnx else list(args.opts),
                    "feat_norm": embedder.card.feat_norm, "precision": embedder.precision}
            if info.is_main:
                log.info("embedding %d images under %s with %s", len(paths), args.images, embedder.describe())
            workers = args.workers if args.workers is not None else build_num_workers(cfg, quiet=not configured)
            out = extract_gallery(embedder, paths, args.out, fingerprint, meta, args.shard_size, args.dtype, info,
                                  workers, args.overwrite)
        if out is not None:
            log.info("%d descriptors of %d dims (%s) written to %s", len(paths), embedder.dim, args.dtype, out)
    finally:
        shutdown(info)
    return 0
