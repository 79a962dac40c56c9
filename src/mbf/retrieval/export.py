"""ONNX export of the eval-mode descriptor model, checked against PyTorch by onnxruntime.

Graph inputs: ``images`` float32 [N, 3, H, W] preprocessed as the model card says and, when
the model has camera embeddings, ``cameras`` int64 [N]; output ``descriptor`` float32 [N, D],
exactly ``model(images, cam_label=cameras)``; N is dynamic. The card (JSON, ONNX metadata key
``mbf.card``) records the preprocessing and the descriptor layout. The TorchScript exporter
is used (no extra dependency); the fused attention kernel exports as plain ONNX operators.

For consumers that feed one input (a tracker's ReID backend), the card given to
:func:`export_onnx` may fix a camera (``card.camera``: the graph has no ``cameras`` input and
embeds every image as that camera) and declare the consumer's input normalisation
(``card.model_normalisation``: the graph takes images normalised with the card's mean/std,
e.g. ImageNet's, and converts them to the model's with one multiply-add per channel); see
:meth:`ModelCard.for_graph`. The parity check then compares onnxruntime with the PyTorch model
fed the same images renormalised and that camera.
"""
from __future__ import annotations

import inspect
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ExportError, InputError
from ..files import atomic_path, probe_writable, removing_new_folders
from .metadata import CARD_KEY, ModelCard

log = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-4  # max |onnx - torch| / max |torch| over the check batch
OPSET = 17
_TRACE_BATCH = 2  # the batch traced; the check runs another size, so the dynamic batch is exercised


class _DescriptorGraph(nn.Module):
    """``(images[, cameras]) -> model(images, cam_label=cameras)``, the traced signature; with a
    fixed camera ``images -> model(images, cam_label=[camera] * N)``, and with an input conversion
    the images are first taken to the model's normalisation (``images * scale + shift``)."""

    def __init__(self, model: nn.Module, card: ModelCard):
        super().__init__()
        self.model = model
        self.with_cameras = card.num_cameras > 0 and card.camera is None
        self.camera = card.camera
        conversion = card.input_conversion()
        self.convert = conversion is not None
        if conversion is not None:
            scale, shift = (torch.tensor(v, dtype=torch.float32).view(1, 3, 1, 1) for v in conversion)
            self.register_buffer("scale", scale, persistent=False)
            self.register_buffer("shift", shift, persistent=False)

    def forward(self, images: torch.Tensor, cameras: torch.Tensor | None = None) -> torch.Tensor:
        if self.convert:
            images = images * self.scale + self.shift
        if self.camera is not None:
            cameras = torch.full_like(images[:, 0, 0, 0], self.camera, dtype=torch.long)
        elif not self.with_cameras:
            cameras = None
        return self.model(images, cam_label=cameras)


@dataclass(frozen=True)
class ExportReport:
    path: Path
    check_batch: int
    max_abs_error: float
    relative_error: float


def writable_output(path: str | os.PathLike, overwrite: bool = False, what: str = "output") -> Path:
    """``path`` as a Path once it is known that it can be written; InputError if not.

    Nothing is created (see :func:`mbf.files.probe_writable`).
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what} {path} is a directory, expected a file path")
    if path.exists() and not overwrite:
        raise InputError(f"{what} {path} already exists (pass --overwrite to replace it)")
    try:
        probe_writable(path.parent)
    except OSError as exc:
        raise InputError(f"cannot write {what} {path}: {exc.strerror or exc}") from None
    return path


def _first_line(exc: BaseException) -> str:
    """The first line of a library's error message (its type's name when it has none): their
    messages can run to pages of tracer or runtime detail."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def sample_inputs(card: ModelCard, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A batch of random preprocessed images (and cameras, unless the graph fixes one) shaped as the card says."""
    gen = torch.Generator().manual_seed(seed)
    h, w = card.preprocessing.size
    feeds = {"images": torch.randn(batch, 3, h, w, generator=gen).numpy()}
    if card.num_cameras and card.camera is None:
        feeds["cameras"] = (np.arange(batch) % card.num_cameras).astype(np.int64)
    return feeds


def _torch_descriptor(model: nn.Module, feeds: dict[str, np.ndarray], card: ModelCard | None = None) -> np.ndarray:
    """The PyTorch model's descriptors of the graph inputs ``feeds``: images renormalised from the
    card's normalisation to the model's (pixels = x * std + mean, then (pixels - mean') / std')
    and the card's fixed camera, when it has them."""
    images = torch.from_numpy(feeds["images"])
    cams = torch.from_numpy(feeds["cameras"]) if "cameras" in feeds else None
    if card is not None and card.model_normalisation:
        pre, own = card.preprocessing, card.model_normalisation
        pixels = images * torch.tensor(pre.std).view(1, 3, 1, 1) + torch.tensor(pre.mean).view(1, 3, 1, 1)
        images = (pixels - torch.tensor(own["mean"]).view(1, 3, 1, 1)) / torch.tensor(own["std"]).view(1, 3, 1, 1)
    if card is not None and card.camera is not None:
        cams = torch.full((len(images),), card.camera, dtype=torch.long)
    with torch.no_grad():
        return model(images.float(), cam_label=cams).float().numpy()


def onnx_session(path: str | os.PathLike, threads: int = 0):
    """An onnxruntime CPU session with all graph optimisations."""
    import onnxruntime as ort  # deferred on purpose: the deploy extra is optional

    if not Path(path).is_file():
        raise InputError(f"ONNX model not found: {path}")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable files
        raise InputError(f"cannot load ONNX model {path}: {_first_line(exc)}") from None


def parity(model: nn.Module, session, card: ModelCard, batch: int) -> tuple[float, float]:
    """(max abs error, relative error) of onnxruntime against PyTorch on one random batch."""
    feeds = sample_inputs(card, batch, seed=batch)
    reference = _torch_descriptor(model, feeds, card)
    names = {i.name for i in session.get_inputs()}
    got = session.run(["descriptor"], {k: v for k, v in feeds.items() if k in names})[0]
    if got.shape != reference.shape:
        return float("inf"), float("inf")
    err = float(np.abs(got - reference).max())
    return err, err / max(float(np.abs(reference).max()), 1e-12)


def export_onnx(model: nn.Module, card: ModelCard, out: str | os.PathLike, check_batch: int = 3,
                opset: int = OPSET, overwrite: bool = False) -> ExportReport:
    """Write ``model`` (eval mode) as ONNX to ``out`` with ``card`` in its metadata, after checking it.

    The file is first written beside ``out`` under a temporary name; onnxruntime's output on a
    batch of ``check_batch`` random images is compared with PyTorch's, and only when the
    relative error is at most PARITY_TOLERANCE is the file moved to ``out``. Otherwise
    ExportError, also when the exporter itself fails; nothing is left behind, not even the
    folders created for ``out``.
    """
    if check_batch < 1:
        raise InputError(f"the check batch must be at least 1, got {check_batch}")
    out = writable_output(out, overwrite, "ONNX output")
    with removing_new_folders(out.parent):
        return _export(model, card, out, check_batch, opset)


def _export(model: nn.Module, card: ModelCard, out: Path, check_batch: int, opset: int) -> ExportReport:
    import onnx  # deferred on purpose: the deploy extra is optional

    model = model.eval()
    graph = _DescriptorGraph(model, card).eval()  # export restores the mode it found
    feeds = sample_inputs(card, _TRACE_BATCH)
    args = tuple(torch.from_numpy(v) for v in feeds.values())
    names = list(feeds)
    kwargs = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    with atomic_path(out) as tmp:
        with warnings.catch_warnings(), torch.no_grad():
            # the traced input checks (Python bools) and the exporter's deprecation notice
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            try:
                torch.onnx.export(
                    graph, args, str(tmp), input_names=names, output_names=["descriptor"],
                    dynamic_axes={**{n: {0: "batch"} for n in names}, "descriptor": {0: "batch"}},
                    opset_version=opset, do_constant_folding=True, **kwargs,
                )
            except Exception as exc:  # the exporter's errors come from deep inside tracing; name the output
                raise ExportError(f"torch.onnx.export could not export the model to {out} (opset {opset}): "
                                  f"{type(exc).__name__}: {_first_line(exc)}") from exc
        proto = onnx.load(str(tmp))
        del proto.metadata_props[:]
        entry = proto.metadata_props.add()
        entry.key, entry.value = CARD_KEY, card.to_json()
        proto.doc_string = ("MBF re-ID descriptor. Inputs are preprocessed images (see the mbf.card metadata: "
                            "resize, [0, 1], mean/std); the output is not L2-normalised.")
        onnx.save(proto, str(tmp))
        del proto
        err, rel = parity(model, onnx_session(tmp), card, check_batch)
        if not rel <= PARITY_TOLERANCE:
            raise ExportError(
                f"onnxruntime output differs from PyTorch's on a batch of {check_batch}: relative error {rel:.3g} "
                f"(max abs {err:.3g}) > {PARITY_TOLERANCE:g}; {out} was not written"
            )
    return ExportReport(out, check_batch, err, rel)


def read_card(session, path: str | os.PathLike) -> ModelCard:
    """The model card stored in the metadata of an exported model's onnxruntime session."""
    props = session.get_modelmeta().custom_metadata_map
    if CARD_KEY not in props:
        raise InputError(f"{path} has no {CARD_KEY} metadata: export it with `mbf export`")
    return ModelCard.from_json(props[CARD_KEY], str(path))
