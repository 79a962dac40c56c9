"""An MBF model as a BoxMOT tracker's appearance (ReID) model, with no adapter code.

    from boxmot import BotSort
    from mbf.integrations.boxmot import BoxMOTReID

    reid = BoxMOTReID.from_onnx("mbf.onnx", camera=0, threads=1)     # or .from_checkpoint(weights, config)
    tracker = BotSort(reid_model=reid)                                # one BoxMOTReID per camera stream
    tracks = tracker.update(dets, frame)                              # dets N x 6 (x1 y1 x2 y2 conf cls), frame BGR

What a BoxMOT tracker asks of ``reid_model`` (BoxMOT 25): ``get_features(xyxys, img)`` with
``xyxys`` float32 N x 4 (x1, y1, x2, y2 in pixels) and ``img`` the whole frame as OpenCV gives it
(uint8 H x W x 3, BGR), returning N descriptors; the tracker L2-normalises them itself and
times the call. Its encoder path also calls the staged methods ``get_crops`` ->
``inference_preprocess`` -> ``forward`` -> ``inference_postprocess`` and reads
``input_shape``, ``embedding_dim`` and ``device``; all are here, each cheap.

The model, not the tracker, crops, clips, converts the colour order, resizes, normalises and
batches, exactly as :meth:`mbf.Embedder.embed_boxes` does (boxes rounded and clipped to the
frame; a NaN, inverted or empty box is an error naming it). Camera policy: a tracker passes no
camera, so each instance embeds every box as its one ``camera`` (0-based; models without camera
embeddings ignore it): make one instance per camera stream. Threads: ``threads`` (default 1,
right for a tracker loop sharing the machine with a detector) sets onnxruntime's threads for
this instance's session, or torch's threads for the whole process for a checkpoint.

This module does not import BoxMOT (AGPL-3.0): an MBF user who does not track never installs
it. BoxMOT's own ONNX backend can also run an MBF file unchanged when it is exported with
``mbf export --camera K --input-normalisation imagenet`` (docs/TRACKING.md); this class needs
neither option and none of BoxMOT's run-time installs.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch

from ..errors import InputError
from ..retrieval.embedder import Embedder
from ..retrieval.images import frame_array, frame_crops, pixel_boxes, to_pil


class BoxMOTReID:
    """A BoxMOT ``reid_model``: an :class:`mbf.Embedder` with one camera and a colour order.

    ``camera``: the camera id every box of this stream is embedded with (None: the embedder's
    ``unknown_camera``, 0 unless set); ``bgr``: the frames' colour order (True: OpenCV's, which
    BoxMOT passes on)."""

    def __init__(self, embedder: Embedder, camera: int | None = None, bgr: bool = True):
        if not isinstance(embedder, Embedder):
            raise InputError(f"BoxMOTReID wraps an mbf.Embedder, got a {type(embedder).__name__}")
        camera = embedder.unknown_camera if camera is None else int(camera)
        embedder.cameras_for([None], [camera])  # a camera the model has (or its graph's fixed one): checked once
        self.embedder, self.camera, self.bgr = embedder, camera, bool(bgr)
        self.weights = embedder.source  # what BoxMOT's runtime wrapper reads as the model's name
        self.device = torch.device(getattr(embedder, "device", "cpu"))
        self.half = False

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_onnx(cls, path: str | os.PathLike, camera: int | None = None, threads: int = 1, bgr: bool = True,
                  batch_size: int = 32) -> "BoxMOTReID":
        """An ``mbf export`` file run by onnxruntime with ``threads`` threads for this session."""
        return cls(Embedder.from_onnx(path, batch_size=batch_size, threads=threads), camera, bgr)

    @classmethod
    def from_checkpoint(cls, weights: str | os.PathLike, config, opts: Sequence[str] = (), camera: int | None = None,
                        threads: int = 1, bgr: bool = True, device=None, batch_size: int = 32,
                        precision: str | None = None) -> "BoxMOTReID":
        """A checkpoint with its config (a YAML path or a config node, plus ``opts``), run by PyTorch
        with ``threads`` threads (a process-wide torch setting) and ``precision`` (None: TEST.AMP)."""
        embedder = Embedder.from_checkpoint(config, weights, opts, device=device, batch_size=batch_size,
                                            threads=threads, precision=precision)
        return cls(embedder, camera, bgr)

    @classmethod
    def load(cls, weights: str | os.PathLike, config=None, opts: Sequence[str] = (), camera: int | None = None,
             threads: int = 1, bgr: bool = True, **kwargs) -> "BoxMOTReID":
        """An ``.onnx`` file, or a checkpoint with its ``config``."""
        if str(weights).lower().endswith(".onnx"):
            return cls.from_onnx(weights, camera, threads, bgr, **kwargs)
        if config is None or config == "":
            raise InputError(f"{weights}: a checkpoint needs its config file (config=...)")
        return cls.from_checkpoint(weights, config, opts, camera, threads, bgr, **kwargs)

    # ------------------------------------------------------------------ what BoxMOT reads
    @property
    def embedding_dim(self) -> int:
        return self.embedder.dim

    @property
    def input_shape(self) -> tuple[int, int]:
        """(H, W) of the model's input."""
        return tuple(self.embedder.card.preprocessing.size)

    def get_features(self, xyxys, img) -> np.ndarray:
        """Descriptors float32 [N, D] of the boxes ``xyxys`` (N x 4+ pixels) in the frame ``img``;
        [0, D] for no boxes."""
        return self.embedder.embed_boxes(img, xyxys, cameras=self.camera, bgr=self.bgr)

    # the stages BoxMOT's encoder path calls (and times) one after the other
    def get_crops(self, xyxys, img) -> torch.Tensor:
        """The boxes' crops preprocessed as the model card says: float32 [N, 3, H, W]."""
        frame = frame_array(img)
        pixels = pixel_boxes(xyxys, frame.shape[0], frame.shape[1])
        h, w = self.input_shape
        if not len(pixels):
            return torch.empty((0, 3, h, w))
        transform = self.embedder.transform
        return torch.stack([transform(to_pil(crop, self.bgr)) for crop in frame_crops(frame, pixels)])

    def inference_preprocess(self, batch: torch.Tensor) -> torch.Tensor:
        return batch

    def forward(self, batch: torch.Tensor) -> np.ndarray:
        """Raw descriptors of a batch from :meth:`get_crops` (not normalised)."""
        if not len(batch):
            return np.empty((0, self.embedding_dim), np.float32)
        cams = self.embedder.cameras_for([None] * len(batch), [self.camera] * len(batch))
        return self.embedder.raw_descriptors(batch, cams)

    def inference_postprocess(self, features) -> np.ndarray:
        """Descriptors as :meth:`get_features` returns them (L2-normalised when the model's card says so)."""
        return self.embedder.postprocess(np.asarray(features, dtype=np.float32))

    def warmup(self, imgsz=None) -> None:
        """BoxMOT warms GPU backends up; nothing to do on the CPU."""

    def __repr__(self) -> str:
        return f"BoxMOTReID({self.embedder.describe()}, camera {self.camera}, {'BGR' if self.bgr else 'RGB'} frames)"
