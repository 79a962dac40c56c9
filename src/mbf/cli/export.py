"""``mbf export``: the eval-mode descriptor model as ONNX, checked against PyTorch by onnxruntime.

The graph takes preprocessed images (and camera ids when the model has camera embeddings)
and returns the raw descriptor; the preprocessing and the descriptor layout are stored in
the file's metadata (``mbf.card``). See :mod:`mbf.retrieval.export`.

For a consumer that feeds one input, e.g. a tracker's ReID backend (BoxMOT's ONNX backend
feeds ``images`` only, normalised with ImageNet's mean and std): ``--camera K`` fixes camera K
in the graph (no ``cameras`` input), and ``--input-normalisation imagenet`` (or
``--input-mean R G B --input-std R G B``) makes the graph take images normalised the
consumer's way and convert them to the model's inside. Both are recorded in the card and
checked by the same onnxruntime parity check (docs/TRACKING.md).
"""
from __future__ import annotations

import logging

from ..normalisation import IMAGENET_MEAN, IMAGENET_STD
from . import add_config_arguments

HELP = "export to ONNX: mbf export --config_file F --weights W --out model.onnx [KEY VALUE ...]"

log = logging.getLogger("mbf.export")


def add_arguments(parser) -> None:
    parser.add_argument("--weights", required=True, help="trained model (.pth, ours or the reference's)")
    parser.add_argument("--out", required=True, help="output .onnx file")
    parser.add_argument("--check_batch", type=int, default=3, help="images in the onnxruntime parity check (default 3)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--camera", type=int, default=None, metavar="K",
                        help="fix camera K (0-based) in the graph, which then has one input (images); for consumers "
                             "that feed no camera ids, e.g. BoxMOT (default: a cameras input when the model has SIE)")
    parser.add_argument("--input-normalisation", "--input-normalization", dest="input_normalisation", default=None,
                        choices=sorted(INPUT_NORMALISATIONS),
                        help="the normalisation the consumer applies to the graph input, converted to the model's "
                             "inside the graph: 'imagenet' (mean 0.485 0.456 0.406, std 0.229 0.224 0.225, as "
                             "BoxMOT), 'model' (the model's own: the default)")
    parser.add_argument("--input-mean", type=float, nargs=3, default=None, metavar=("R", "G", "B"),
                        help="the consumer's mean on [0, 1] pixels (with --input-std; instead of --input-normalisation)")
    parser.add_argument("--input-std", type=float, nargs=3, default=None, metavar=("R", "G", "B"),
                        help="the consumer's std on [0, 1] pixels (with --input-mean)")
    add_config_arguments(parser)


# the consumers' input normalisations (mean, std on [0, 1] RGB pixels); None: the model's own
INPUT_NORMALISATIONS = {"imagenet": (IMAGENET_MEAN, IMAGENET_STD), "model": None}


def input_normalisation(args):
    """(mean, std) of the graph input from the command line, or (None, None) for the model's own."""
    from ..errors import InputError

    named = args.input_normalisation
    given = args.input_mean is not None or args.input_std is not None
    if named is not None and given:
        raise InputError("give --input-normalisation or --input-mean/--input-std, not both")
    if given:
        if args.input_mean is None or args.input_std is None:
            raise InputError("--input-mean and --input-std go together")
        return tuple(args.input_mean), tuple(args.input_std)
    return INPUT_NORMALISATIONS.get(named) or (None, None)


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
    mean, std = input_normalisation(args)  # fail before the model is built
    writable_output(args.out, args.overwrite, "ONNX output")
    model = build_checkpoint_model(cfg, args.weights).eval()
    card = ModelCard.from_config(cfg, model).for_graph(args.camera, mean, std)
    log.info("exporting %s (%d-d descriptor%s) to %s", args.weights, card.dim,
             f", {card.num_cameras} cameras" if card.num_cameras else "", args.out)
    report = export_onnx(model, card, args.out, args.check_batch, args.opset, args.overwrite)
    print(f"onnxruntime vs PyTorch on a batch of {report.check_batch}: relative error {report.relative_error:.2e} "
          f"(max abs {report.max_abs_error:.2e}, limit {PARITY_TOLERANCE:.0e})")
    pre = card.preprocessing
    cameras = ", cameras int64 [N]" if card.num_cameras and card.camera is None else ""
    print(f"wrote {report.path}: inputs images float32 [N, 3, {pre.size[0]}, {pre.size[1]}]{cameras}; "
          f"output descriptor float32 [N, {card.dim}]")
    if card.camera is not None:
        print(f"camera {card.camera} of the model's {card.num_cameras} is fixed in the graph")
    norm = "converted inside the graph to the model's" if card.model_normalisation else "the model's own"
    print(f"images: RGB, resized to {pre.size[0]} x {pre.size[1]} ({pre.interpolation}), [0, 1], normalised with "
          f"mean {list(pre.mean)}, std {list(pre.std)} ({norm})")
    return 0
