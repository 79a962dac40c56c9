"""The human-parsing teacher: HRNet logits -> per-pixel part labels for training images.

The parsing step (as the reference runs it on the normalised training batch): bilinear resize
to the parser's input size, network, logits bilinearly upsampled to the input size and
exponentiated, bilinear resize to the image size, argmax over the 10 classes, then the
post-processing and label merge of :mod:`mbf.parsing.postprocess` (on the CPU).
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, ConfigError, InputError
from ..state_dicts import fit_problems, load_torch_file
from .hrnet import HRNet, build_hrnet
from .postprocess import postprocess

log = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "model."  # the authors' checkpoint stores the network under this prefix
WRAPPER_PREFIX = "module."  # (Distributed)DataParallel
# BatchNorm counters are not used in eval mode; checkpoints of old PyTorch versions lack them
OPTIONAL_SUFFIX = "num_batches_tracked"


def checkpoint_digest(path: str | os.PathLike) -> str:
    """A short content hash of a parser checkpoint (names the parse cache it produced)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def _names(keys: list[str], limit: int = 8) -> str:
    return ", ".join(keys[:limit]) + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def _read_state(source) -> tuple[dict, str]:
    if not isinstance(source, (str, os.PathLike)):
        return source, "the given state dict"
    path = Path(source)
    state = load_torch_file(path, "parser checkpoint (HUMAN_PARSING.MODEL_FILE)")
    return state, str(path)


def network_state(state: dict) -> dict:
    """The network's tensors from a checkpoint: the authors' ``model.``-prefixed keys (anything
    else, such as ``loss.criterion.weight``, is dropped) or a plain HRNet state dict."""
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    state = {k[len(WRAPPER_PREFIX):] if k.startswith(WRAPPER_PREFIX) else k: v for k, v in state.items()}
    if any(k.startswith(CHECKPOINT_PREFIX) for k in state):
        state = {k[len(CHECKPOINT_PREFIX):]: v for k, v in state.items() if k.startswith(CHECKPOINT_PREFIX)}
    return state


def load_parser_weights(net: nn.Module, source) -> None:
    """Load a parser checkpoint (path or state dict) into ``net``.

    Raises CheckpointError naming the missing, unexpected and shape-mismatched keys, so a
    checkpoint of another HRNet configuration is reported instead of half loaded.
    """
    state, where = _read_state(source)
    if not isinstance(state, dict):
        raise CheckpointError(f"parser checkpoint {where} holds a {type(state).__name__}, not a state dict")
    state = {k: v for k, v in network_state(state).items() if isinstance(v, torch.Tensor)}
    if not state:
        raise CheckpointError(f"parser checkpoint {where} holds no tensors")
    own = net.state_dict()
    problems = fit_problems(own, state, lambda k: k.endswith(OPTIONAL_SUFFIX), limit=8)
    if problems:
        raise CheckpointError(
            f"parser checkpoint {where} does not fit the HRNet of HUMAN_PARSING.EXTRA / NUM_CLASSES: "
            + "; ".join(problems)
        )
    net.load_state_dict({k: state[k] for k in own if k in state}, strict=False)


def build_parser_normalisation(cfg) -> tuple[tuple, tuple]:
    """((mean), (std)) the parser's input is normalised with: HUMAN_PARSING.PIXEL_MEAN / PIXEL_STD,
    or when those are empty the training images' INPUT.PIXEL_MEAN / PIXEL_STD (the reference)."""
    hp = cfg.HUMAN_PARSING
    mean, std = (tuple(hp.PIXEL_MEAN) or tuple(cfg.INPUT.PIXEL_MEAN)), (tuple(hp.PIXEL_STD) or tuple(cfg.INPUT.PIXEL_STD))
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ConfigError(f"HUMAN_PARSING.PIXEL_MEAN / PIXEL_STD must be three values each (std > 0), got "
                          f"{list(hp.PIXEL_MEAN)} / {list(hp.PIXEL_STD)}")
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


class HumanParser(nn.Module):
    """Frozen parser: ``logits(images)`` and ``forward(images) -> part labels [B,H,W]``.

    Args:
        net: the HRNet.
        input_size: (height, width) the network sees (HUMAN_PARSING.IMAGE_SIZE is width, height).
        images_norm / parser_norm: ((mean), (std)) of the images it is given and of the images it
            was trained on; when both are given and differ, images are converted to the parser's
            normalisation first (a backbone pretrained with other statistics, e.g. CLIP's, then
            does not change what the parser sees). None: given as the parser expects them.
    """

    def __init__(self, net: HRNet, input_size: tuple[int, int], images_norm=None, parser_norm=None):
        super().__init__()
        self.net = net
        self.input_size = tuple(int(v) for v in input_size)
        self.convert = None  # (scale, shift) [3], per channel: x_parser = x * scale + shift
        if images_norm is not None and parser_norm is not None and tuple(map(tuple, images_norm)) != tuple(
                map(tuple, parser_norm)):
            (mean_in, std_in), (mean_p, std_p) = (torch.tensor(images_norm, dtype=torch.float32),
                                                  torch.tensor(parser_norm, dtype=torch.float32))
            self.convert = (std_in / std_p, (mean_in - mean_p) / std_p)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_config(cls, cfg, load_weights: bool = True) -> "HumanParser":
        """HRNet of HUMAN_PARSING.EXTRA / NUM_CLASSES / IMAGE_SIZE with HUMAN_PARSING.MODEL_FILE loaded."""
        hp = cfg.HUMAN_PARSING
        if len(hp.IMAGE_SIZE) != 2 or min(int(v) for v in hp.IMAGE_SIZE) <= 0:
            raise ConfigError(f"HUMAN_PARSING.IMAGE_SIZE must be [width, height], got {list(hp.IMAGE_SIZE)}")
        width, height = (int(v) for v in hp.IMAGE_SIZE)
        images_norm = (tuple(cfg.INPUT.PIXEL_MEAN), tuple(cfg.INPUT.PIXEL_STD))
        parser = cls(build_hrnet(hp.EXTRA, int(hp.NUM_CLASSES)), (height, width), images_norm,
                     build_parser_normalisation(cfg))
        if load_weights:
            if not hp.MODEL_FILE:
                raise ConfigError("HUMAN_PARSING.MODEL_FILE is empty: set it to the parser checkpoint "
                                  "(weights/Human-Parsing-Network_best.pth)")
            load_parser_weights(parser.net, hp.MODEL_FILE)
        return parser

    def train(self, mode: bool = True):
        return super().train(False)  # a frozen teacher: BatchNorm always uses its running statistics

    @torch.no_grad()
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Network output [B, classes, h/4, w/4] for images [B,3,h,w] already at the parser's input size."""
        return self.net(images)

    @torch.no_grad()
    def _scores(self, images: torch.Tensor) -> torch.Tensor:
        """exp(logits) [B, classes, *input_size] for images at any size."""
        images = images.float()
        if self.convert is not None:  # per-channel affine: it commutes with the bilinear resizes
            scale, shift = (t.to(images.device).view(1, 3, 1, 1) for t in self.convert)
            images = images * scale + shift
        x = F.interpolate(images, size=self.input_size, mode="bilinear", align_corners=False)
        scores = F.interpolate(self.logits(x), size=self.input_size, mode="bilinear", align_corners=False)
        # the reference exponentiates before resizing to the image: kept, as it changes the argmax
        return scores.exp()

    @staticmethod
    def _argmax_at(scores: torch.Tensor, size) -> torch.Tensor:
        if tuple(scores.shape[-2:]) != tuple(size):
            scores = F.interpolate(scores, size=tuple(size), mode="bilinear", align_corners=False)
        return scores.argmax(dim=1).to(torch.uint8)

    @torch.no_grad()
    def class_maps(self, images: torch.Tensor) -> torch.Tensor:
        """Parser classes uint8 [B,H,W] at the images' size, before post-processing."""
        return self._argmax_at(self._scores(images), images.shape[-2:])

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Part labels int64 [B,H,W] (0..4) for normalised images [B,3,H,W] (on their device)."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise InputError(f"HumanParser expects images [B,3,H,W], got shape {tuple(images.shape)}")
        return postprocess(self.class_maps(images)).to(images.device).long()

    @torch.no_grad()
    def parse_each(self, images: list[torch.Tensor]) -> list[np.ndarray]:
        """Part labels uint8 [H_i,W_i] for normalised images [3,H_i,W_i] of different sizes.

        One network call for all of them: each image is resized to the parser size on its
        own (what the batched resize does per image), and the post-processing runs on the
        label maps zero-padded to a common size (padding is background, which joins no
        component and changes no size or order), then cropped back.
        """
        if not images:
            return []
        x = torch.cat([F.interpolate(img[None].float(), size=self.input_size, mode="bilinear", align_corners=False)
                       for img in images])
        scores = self._scores(x)  # already at the input size: the first resize is the identity
        sizes = [tuple(img.shape[-2:]) for img in images]
        height, width = max(h for h, _ in sizes), max(w for _, w in sizes)
        maps = np.zeros((len(images), height, width), dtype=np.uint8)
        for i, (h, w) in enumerate(sizes):
            maps[i, :h, :w] = self._argmax_at(scores[i:i + 1], (h, w))[0].cpu().numpy()
        labels = postprocess(maps)
        return [labels[i, :h, :w] for i, (h, w) in enumerate(sizes)]
