"""The human-parsing teacher: HRNet logits -> per-pixel part labels for training images."""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, ConfigError
from .hrnet import HRNet, build_hrnet
from .postprocess import postprocess

log = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "model."  # the authors' checkpoint stores the network under this prefix


def checkpoint_digest(path: str | os.PathLike) -> str:
    """A short content hash of a parser checkpoint (names the parse cache it produced)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def load_parser_weights(net: nn.Module, source) -> None:
    """Load the authors' checkpoint (``model.`` prefix; other keys such as ``loss.*`` ignored)
    or a plain state dict; missing keys and shape mismatches are reported by name."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise CheckpointError(f"parser checkpoint not found: {path} (HUMAN_PARSING.MODEL_FILE)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # corrupt or not a torch file
            first = (str(exc).strip().splitlines() or [""])[0]
            raise CheckpointError(f"cannot read parser checkpoint {path}: {first}") from None
        where = str(path)
    else:
        state, where = source, "the given state dict"
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"parser checkpoint {where} holds a {type(state).__name__}, not a state dict")
    if any(k.startswith(CHECKPOINT_PREFIX) for k in state):
        state = {k[len(CHECKPOINT_PREFIX):]: v for k, v in state.items() if k.startswith(CHECKPOINT_PREFIX)}
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
              for k, v in own.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        details = []
        if missing:
            details.append(f"{len(missing)} missing keys ({', '.join(missing[:8])}{', ...' if len(missing) > 8 else ''})")
        if unexpected:
            details.append(
                f"{len(unexpected)} unexpected keys ({', '.join(unexpected[:8])}{', ...' if len(unexpected) > 8 else ''})"
            )
        if shapes:
            details.append(f"{len(shapes)} shape mismatches ({'; '.join(shapes[:4])}{'; ...' if len(shapes) > 4 else ''})")
        raise CheckpointError(
            f"parser checkpoint {where} does not fit the HRNet of HUMAN_PARSING.EXTRA: {' and '.join(details)}"
        )
    net.load_state_dict({k: state[k] for k in own})


class HumanParser(nn.Module):
    """Frozen parser: ``logits(images)`` and ``forward(images) -> part labels [B,H,W]``.

    Args:
        net: the HRNet; input_size: (H, W) the parser sees (HUMAN_PARSING.IMAGE_SIZE is W, H).
    """

    def __init__(self, net: HRNet, input_size: tuple[int, int]):
        super().__init__()
        self.net = net
        self.input_size = tuple(int(v) for v in input_size)
        self.checkpoint_id = "random"
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_config(cls, cfg, load_weights: bool = True) -> "HumanParser":
        hp = cfg.HUMAN_PARSING
        if not hp.EXTRA or "STAGE2" not in hp.EXTRA:
            raise ConfigError("HUMAN_PARSING.EXTRA holds no HRNet stages (STAGE2..STAGE4); use a seed config's block")
        width, height = hp.IMAGE_SIZE
        parser = cls(build_hrnet(hp.EXTRA, int(hp.NUM_CLASSES)), (height, width))
        if load_weights:
            if not hp.MODEL_FILE:
                raise ConfigError("HUMAN_PARSING.MODEL_FILE is empty: set it to the parser checkpoint "
                                  "(weights/Human-Parsing-Network_best.pth)")
            load_parser_weights(parser.net, hp.MODEL_FILE)
            parser.checkpoint_id = checkpoint_digest(hp.MODEL_FILE)
        return parser

    def train(self, mode: bool = True):
        return super().train(False)  # a frozen teacher: BatchNorm always uses its running statistics

    @torch.no_grad()
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Network output [B, classes, H/4, W/4] for images already at the parser's input size."""
        return self.net(images)

    @torch.no_grad()
    def class_maps(self, images: torch.Tensor) -> torch.Tensor:
        """Parser classes [B,H,W] uint8 at the images' size, before post-processing."""
        size = images.shape[-2:]
        x = F.interpolate(images.float(), size=self.input_size, mode="bilinear", align_corners=False)
        scores = F.interpolate(self.logits(x), size=self.input_size, mode="bilinear", align_corners=False)
        # the reference exponentiates before the argmax; kept, so that overflowing logits tie the same way
        scores = scores.exp()
        if tuple(size) != self.input_size:
            scores = F.interpolate(scores, size=size, mode="bilinear", align_corners=False)
        return scores.argmax(dim=1).to(torch.uint8)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Part labels int64 [B,H,W] (0..4) for normalised images [B,3,H,W]."""
        maps = self.class_maps(images)
        return postprocess(maps.cpu()).to(images.device).long()
