"""``Embedder``: descriptors for crops, from a trained checkpoint or an exported ONNX model.

    from mbf import Embedder
    emb = Embedder.load("model.onnx")                        # or ("weights.pth", config="configs/...yml")
    feats = emb.embed([crop1, "person.jpg", pil_image])      # float32 [3, D], L2-normalised if FEAT_NORM

Crops are paths, PIL images or uint8 H x W x 3 arrays (RGB; ``bgr=True`` for OpenCV's
order); they are resized and normalised exactly as the test transform does, in batches of
``batch_size``. Camera policy for models with camera embeddings (SIE): ``cameras[i]`` when
given; otherwise the camera in a re-ID file name (``0001_c3s1_...jpg`` -> camera 2); otherwise
``unknown_camera`` (default 0: the first camera's embedding, as ``mbf extract`` has always
done). Models without camera embeddings ignore cameras; an ONNX file exported with ``--camera K``
has camera K in its graph and refuses any other.

A tracker hands over a whole frame and boxes: ``emb.embed_boxes(frame, boxes, cameras=K,
bgr=True)`` crops, converts the colour order, resizes, normalises and batches (the rules for
frames and boxes are in :mod:`mbf.retrieval.images`).

Precision: a checkpoint runs in float32, or under bfloat16 autocast on the CPU (bfloat16 or
float16 on CUDA) when TEST.AMP is on or ``precision=`` asks for it; ``emb.precision`` says
which. The images of a batch are fed to the network ``chunk`` at a time (TEST.FORWARD_CHUNK):
a large batch's activations outgrow the CPU's caches.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..config import load_config
from ..errors import CheckpointError, InputError
from ..modeling import build_model_from_checkpoint
from .images import ImageFiles, camera_of, frame_array, frame_crops, pixel_boxes, to_pil
from ..precision import Precision, named_precision
from .export import onnx_session, read_card
from .metadata import ModelCard

log = logging.getLogger(__name__)

Backend = Callable[[torch.Tensor, "torch.Tensor | None"], np.ndarray]

FORWARD_CHUNK = 32  # images per forward pass (TEST.FORWARD_CHUNK's default; benchmarks/embed_precision.py)


def l2_normalise(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows divided by their norm (at least ``eps``), as torch.nn.functional.normalize."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)


def _torch_backend(model: torch.nn.Module, device: torch.device, precision: Precision) -> Backend:
    """``model`` on ``device`` under ``precision`` (float32 outputs)."""
    @torch.inference_mode()
    def run(images: torch.Tensor, cams: torch.Tensor | None) -> np.ndarray:
        cams = cams.to(device) if cams is not None else None
        with precision.autocast():
            out = model(images.to(device), cam_label=cams)
        return out.float().cpu().numpy()

    return run


def _onnx_backend(session) -> Backend:
    with_cameras = any(i.name == "cameras" for i in session.get_inputs())

    def run(images: torch.Tensor, cams: torch.Tensor | None) -> np.ndarray:
        feeds = {"images": images.numpy().astype(np.float32, copy=False)}
        if with_cameras:
            feeds["cameras"] = cams.numpy().astype(np.int64)
        return session.run(["descriptor"], feeds)[0]

    return run


class Embedder:
    """A descriptor model plus its preprocessing. Build with :meth:`load`, :meth:`from_checkpoint`
    (:meth:`from_config` for a config already loaded) or :meth:`from_onnx`."""

    def __init__(self, backend: Backend, card: ModelCard, batch_size: int = 32, unknown_camera: int = 0,
                 source: str = "", precision: str = "float32", chunk: int = FORWARD_CHUNK, threads: int = 0):
        """``backend(images, cameras) -> descriptors`` with its ``card``; ``batch_size`` images per
        preprocessed batch, fed to the backend ``chunk`` at a time (0: the whole batch);
        ``precision`` and ``threads`` say what the backend runs with (for :meth:`describe`)."""
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        if chunk < 0:
            raise InputError(f"chunk must be at least 1 (0: the whole batch), got {chunk}")
        if card.camera is not None:
            unknown_camera = card.camera  # the one camera of the graph
        if card.num_cameras and not 0 <= unknown_camera < card.num_cameras:
            raise InputError(f"unknown_camera {unknown_camera} is not a camera of the model (0..{card.num_cameras - 1})")
        self._run, self.card, self.batch_size = backend, card, int(batch_size)
        self.unknown_camera, self.source = int(unknown_camera), source
        self.precision, self.chunk, self.threads = precision, int(chunk), int(threads)
        self.transform = card.preprocessing.transform()

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, weights: str | os.PathLike, config=None, opts: Sequence[str] = (), **kwargs) -> "Embedder":
        """An ``.onnx`` file (its own preprocessing) or a checkpoint with its ``config`` (a YAML path or a config);
        ``kwargs`` go to :meth:`from_onnx` or :meth:`from_checkpoint` (``batch_size``, ``unknown_camera``,
        ``threads``, and for a checkpoint ``device``, ``precision``, ``chunk``)."""
        if str(weights).lower().endswith(".onnx"):
            return cls.from_onnx(weights, **kwargs)
        if config is None or config == "":
            raise InputError(f"{weights}: a checkpoint needs its config file (config=... / --config_file)")
        return cls.from_checkpoint(config, weights, opts, **kwargs)

    @classmethod
    def from_checkpoint(cls, config, weights: str | os.PathLike, opts: Sequence[str] = (), device=None,
                        batch_size: int | None = None, unknown_camera: int = 0,
                        threads: int | None = None, precision: str | None = None,
                        chunk: int | None = None) -> "Embedder":
        """The model of ``config`` (a YAML path or a config node, plus ``opts`` overrides) with ``weights``;
        the other arguments as :meth:`from_config`."""
        return cls.from_config(_config(config, opts), weights, device, batch_size, unknown_camera, threads,
                               precision, chunk)

    @classmethod
    def from_config(cls, cfg, weights: str | os.PathLike, device=None, batch_size: int | None = None,
                    unknown_camera: int = 0, threads: int | None = None, precision: str | None = None,
                    chunk: int | None = None) -> "Embedder":
        """The model of ``cfg`` with ``weights``, on ``device`` (None: MODEL.DEVICE / DEVICE_ID), in
        batches of ``batch_size`` (None: TEST.IMS_PER_BATCH) fed to the network ``chunk`` images at
        a time (None: TEST.FORWARD_CHUNK; 0: the whole batch).

        ``threads``: torch's CPU threads for this process (None: MODEL.CPU_THREADS, whose 0 means
        the CPUs this process may run on); 1 inside a tracker on a machine busy with other work.
        ``precision``: 'float32', 'bfloat16' or 'float16' (CUDA only) autocast (None: TEST.AMP
        and TEST.AMP_DTYPE, float32 when TEST.AMP is off).
        """
        from ..runtime import resolve_device, set_threads

        threads = set_threads(cfg.MODEL.CPU_THREADS if threads is None else threads)
        if device is None:
            device = resolve_device(cfg.MODEL.DEVICE, cfg.MODEL.DEVICE_ID)
        device = torch.device(device)
        if precision is None:
            precision = str(cfg.TEST.AMP_DTYPE) if cfg.TEST.AMP else "float32"
        running = named_precision(precision, device)  # before the model is built: a refused precision costs nothing
        model = build_checkpoint_model(cfg, weights)
        model = model.to(device).eval()
        embedder = cls(_torch_backend(model, device, running), ModelCard.from_config(cfg, model),
                       batch_size or int(cfg.TEST.IMS_PER_BATCH), unknown_camera, str(weights), precision,
                       int(cfg.TEST.FORWARD_CHUNK) if chunk is None else chunk, threads)
        embedder.model, embedder.device = model, device
        return embedder

    @classmethod
    def from_onnx(cls, path: str | os.PathLike, batch_size: int = 32, unknown_camera: int = 0,
                  threads: int = 0, chunk: int = FORWARD_CHUNK) -> "Embedder":
        """An exported model (``mbf export``) run by onnxruntime on the CPU with ``threads`` threads
        (0: the CPUs this process may run on), ``chunk`` images per run (0: the whole batch).
        Its precision is the graph's (float32)."""
        from ..runtime import available_cpus

        threads = int(threads) or available_cpus()
        session = onnx_session(path, threads)
        card = read_card(session, path)
        if card.camera is not None:
            log.info("%s has camera %d fixed in its graph: every image is embedded as camera %d", path, card.camera,
                     card.camera)
        return cls(_onnx_backend(session), card, batch_size, unknown_camera, str(path), "float32", chunk, threads)

    # ------------------------------------------------------------------ facts
    @property
    def dim(self) -> int:
        return self.card.dim

    @property
    def num_cameras(self) -> int:
        return self.card.num_cameras

    def describe(self) -> str:
        """One line: the model's source, descriptor size, precision, threads and batching."""
        backend = "onnxruntime" if self.source.lower().endswith(".onnx") else f"PyTorch on {getattr(self, 'device', 'cpu')}"
        return (f"{self.source or 'model'}: {self.dim}-d descriptors, {backend}, {self.precision}, "
                f"{self.threads or 'default'} threads, batches of {self.batch_size} in chunks of "
                f"{self.chunk or self.batch_size}")

    # ------------------------------------------------------------------ embedding
    def embed(self, images: Sequence, cameras: Sequence[int | None] | None = None, bgr: bool = False) -> np.ndarray:
        """Descriptors [N, D] float32 of crops (paths, PIL images or uint8 arrays), in batches."""
        images = list(images)
        cams = self.cameras_for(images, cameras)
        out = np.empty((len(images), self.dim), np.float32)
        for start in range(0, len(images), self.batch_size):
            stop = min(start + self.batch_size, len(images))
            batch = torch.stack([self.transform(_crop_image(item, bgr, start + i))
                                 for i, item in enumerate(images[start:stop])])
            out[start:stop] = self._descriptors(batch, None if cams is None else cams[start:stop])
        return out

    def embed_boxes(self, frame: np.ndarray, boxes, cameras: int | Sequence[int | None] | None = None,
                    bgr: bool = False) -> np.ndarray:
        """Descriptors [N, D] float32 of the ``boxes`` of one video ``frame``, in batches.

        ``frame``: uint8 H x W x 3, RGB (``bgr=True``: OpenCV's BGR), or grey H x W / H x W x 1, or
        H x W x 4 (alpha dropped). ``boxes``: N x 4+ pixel coordinates x1, y1, x2, y2 (more columns,
        e.g. score and class, ignored); each is rounded and clipped to the frame, and one with a NaN
        or infinite coordinate, inverted, or with no pixel inside the frame is an InputError naming
        it (:mod:`mbf.retrieval.images`). No boxes give [0, D]. ``cameras``: one camera for every box
        (a tracker's stream), one per box, or None (``unknown_camera``)."""
        frame = frame_array(frame)
        pixels = pixel_boxes(boxes, frame.shape[0], frame.shape[1])
        if isinstance(cameras, (int, np.integer)):
            cameras = [int(cameras)] * len(pixels)
        return self.embed(frame_crops(frame, pixels), cameras, bgr) if len(pixels) else \
            np.empty((0, self.dim), np.float32)

    def embed_preprocessed(self, images, cameras: Sequence[int] | None = None) -> np.ndarray:
        """Descriptors of images already preprocessed as ``card.preprocessing`` says, float [N, 3, H, W]."""
        batch = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
        h, w = self.card.preprocessing.size
        if batch.ndim != 4 or tuple(batch.shape[1:]) != (3, h, w) or not batch.is_floating_point():
            raise InputError(f"preprocessed images must be float [N, 3, {h}, {w}], got {batch.dtype} {tuple(batch.shape)}")
        cams = self.cameras_for([None] * len(batch), cameras)
        out = [self._descriptors(batch[s:s + self.batch_size].float(), None if cams is None else cams[s:s + self.batch_size])
               for s in range(0, len(batch), self.batch_size)]
        return np.concatenate(out) if out else np.empty((0, self.dim), np.float32)

    def cameras_for(self, images: Sequence, cameras: Sequence[int | None] | None = None) -> np.ndarray | None:
        """The camera of every image under the policy of the module docstring (None without SIE,
        and for a graph with its camera fixed, which refuses any other camera)."""
        if cameras is not None and len(cameras) != len(images):
            raise InputError(f"{len(cameras)} cameras given for {len(images)} images")
        fixed = self.card.camera
        if fixed is not None:
            for i, given in enumerate(cameras if cameras is not None else ()):
                if given is not None and int(given) != fixed:
                    raise InputError(f"camera {given} of image {i}: {self.source or 'this model'} has camera {fixed} "
                                     f"fixed in its graph (mbf export --camera); export another file for camera {given}")
            return None
        if not self.num_cameras:
            return None
        out = np.full(len(images), self.unknown_camera, np.int64)
        for i, item in enumerate(images):
            given = cameras[i] if cameras is not None else None
            if given is not None:
                if not 0 <= int(given) < self.num_cameras:
                    raise InputError(f"camera {given} of image {i} is not a camera of the model (0..{self.num_cameras - 1})")
                out[i] = int(given)
            elif isinstance(item, (str, os.PathLike)):  # the policy `mbf extract` applies (ImageFiles)
                out[i] = camera_of(str(item), self.num_cameras, self.unknown_camera)
        return out

    def file_loader(self, paths: list[str], num_workers: int = 0) -> DataLoader:
        """Batches (images, cameras) of files, decoded by ``num_workers`` processes."""
        cameras = 0 if self.card.camera is not None else self.num_cameras  # a fixed camera reads no names
        files = ImageFiles(paths, self.transform, cameras, self.unknown_camera)
        return DataLoader(files, batch_size=self.batch_size, num_workers=max(int(num_workers), 0))

    def embed_loaded(self, images: torch.Tensor, cameras: torch.Tensor | None) -> np.ndarray:
        """Descriptors of one batch from :meth:`file_loader`."""
        uses = self.num_cameras and self.card.camera is None
        return self._descriptors(images, cameras.numpy() if uses and cameras is not None else None)

    def raw_descriptors(self, images: torch.Tensor, cams: np.ndarray | None) -> np.ndarray:
        """The model's output float32 [N, D] (never normalised) for preprocessed ``images`` [N, 3, H, W]
        and their cameras (None: ``unknown_camera``), fed to the backend ``chunk`` images at a time."""
        if self.num_cameras and self.card.camera is None and cams is None:
            cams = np.full(len(images), self.unknown_camera, np.int64)
        step = max(self.chunk or len(images), 1)
        parts = [self._run(images[s:s + step], None if cams is None else torch.as_tensor(cams[s:s + step]))
                 for s in range(0, len(images), step)]
        if not parts:
            return np.empty((0, self.dim), np.float32)
        return (parts[0] if len(parts) == 1 else np.concatenate(parts)).astype(np.float32, copy=False)

    def postprocess(self, feats: np.ndarray) -> np.ndarray:
        """Raw descriptors as the embedder returns them: L2-normalised when the card says so."""
        return l2_normalise(feats) if self.card.feat_norm else feats

    def _descriptors(self, images: torch.Tensor, cams: np.ndarray | None) -> np.ndarray:
        return self.postprocess(self.raw_descriptors(images, cams))


def _crop_image(item, bgr: bool, index: int):
    """``to_pil`` with the crop's index in its error."""
    try:
        return to_pil(item, bgr)
    except InputError as exc:
        raise InputError(f"image {index}: {exc}") from None


def _config(config, opts: Sequence[str]):
    if isinstance(config, (str, os.PathLike)):
        return load_config(str(config), list(opts))
    if opts:
        config = config.clone()
        config.merge_from_list(list(opts))
    return config


def build_checkpoint_model(cfg, weights: str | os.PathLike) -> torch.nn.Module:
    """``build_model_from_checkpoint`` with every checkpoint error naming the file."""
    try:
        return build_model_from_checkpoint(cfg, str(weights))
    except CheckpointError as exc:
        if str(weights) in str(exc):
            raise
        raise CheckpointError(f"{weights}: {exc}") from None


def file_sha256(path: str | os.PathLike, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(Path(path), "rb") as f:
        for chunk in iter(lambda: f.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()
