"""``mbf export``: the eval-mode descriptor model as ONNX, checked against PyTorch by onnxruntime.

The graph takes preprocessed images (and camera ids when the model has camera embeddings)
and returns the raw descriptor; the preprocessing and the descriptor layout are stored in
the file's metadata (``mbf.card``). See :mod:`mbf.retrieval.export`.
"""
from __future__ import annotations

import logging

from . import add_config_arguments

HELP = "export to ONNX: mbf export --config_file F --weights W --out model.onnx [KEY VALUE ...]"

log = logging.getLogger("mbf.export")


def add_arguments(parser) -> None:
    parser.add_argument("--weights", required=True, help="trained model (.pth, ours or the reference's)")
    parser.add_argument("--out", required=True, help="output .onnx file")
    parser.add_argument("--check_batch", type=int, default=3, help="images in the onnxruntime parity check (default 3)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    add_config_arguments(parser)


def run(args) -> int:
    # deferred (see mbf.cli): `mbf --help` imports every subcommand module, not torch
    from ..config import load_config
    from ..runtime import set_threads, setup_logging
    from ..retrieval.embedder import build_checkpoint_model
    from ..retrieval.export import PARITY_TOLERANCE, export_onnx, writable_output
    from ..retrieval.metadata import ModelCard

    cfg = load_config(args.config_file, args.opts)
    setup_logging(True)
    set_threads(cfg.MODEL.CPU_THREADS)
    writable_output(args.out, args.overwrite, "ONNX output")  # fail before the model is built
    model = build_checkpoint_model(cfg, args.weights).eval()
    card = ModelCard.from_config(cfg, model)
    log.info("exporting %s (%d-d descriptor%s) to %s", args.weights, card.dim,
             f", {card.num_cameras} cameras" if card.num_cameras else "", args.out)
    report = export_onnx(model, card, args.out, args.check_batch, args.opset, args.overwrite)
    print(f"onnxruntime vs PyTorch on a batch of {report.check_batch}: relative error {report.relative_error:.2e} "
          f"(max abs {report.max_abs_error:.2e}, limit {PARITY_TOLERANCE:.0e})")
    print(f"wrote {report.path}: inputs images float32 [N, 3, {card.preprocessing.size[0]}, {card.preprocessing.size[1]}]"
          + (", cameras int64 [N]" if card.num_cameras else "") + f"; output descriptor float32 [N, {card.dim}]")
    return 0
