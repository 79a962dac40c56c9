"""What a descriptor model expects and returns, written into exported models and galleries.

A :class:`ModelCard` holds the preprocessing (size, mean, std, interpolation), the
descriptor layout (which dimensions are the global feature, which the body parts) and
whether descriptors are L2-normalised before they are compared (TEST.FEAT_NORM). The ONNX
graph does neither: it takes images already preprocessed as the card says and returns the
raw descriptor, so a program that follows the card can neither skip nor repeat a step.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from ..data.transforms import TEST_INTERPOLATION, eval_transform
from ..errors import InputError
from ..modeling import MBF
from ..parts import PART_NAMES

CARD_KEY = "mbf.card"  # ONNX metadata_props key of the JSON card
CARD_VERSION = 1


@dataclass(frozen=True)
class Preprocessing:
    """RGB image -> resize to ``size`` (H, W, PIL ``interpolation``) -> [0, 1] -> (x - mean) / std, N x 3 x H x W."""

    size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = TEST_INTERPOLATION

    @classmethod
    def from_cfg(cls, cfg) -> "Preprocessing":
        return cls(tuple(int(v) for v in cfg.INPUT.SIZE_TEST), tuple(float(v) for v in cfg.INPUT.PIXEL_MEAN),
                   tuple(float(v) for v in cfg.INPUT.PIXEL_STD))

    def transform(self):
        """``transform(pil_image)`` -> float tensor [3, H, W], the same steps as ``build_test_transform``."""
        if self.interpolation != TEST_INTERPOLATION:
            raise InputError(f"preprocessing interpolation {self.interpolation!r} is not supported "
                             f"(this version resizes with {TEST_INTERPOLATION!r})")
        return eval_transform(self.size, self.mean, self.std)


@dataclass(frozen=True)
class Block:
    """Dimensions [start, stop) of the descriptor hold ``name``, multiplied by ``scale``."""

    name: str
    start: int
    stop: int
    scale: float = 1.0


@dataclass(frozen=True)
class ModelCard:
    preprocessing: Preprocessing
    dim: int
    layout: tuple[Block, ...]
    feat_norm: bool  # L2-normalise the model's output before comparing (not done by the model itself)
    num_cameras: int  # > 0: the model takes a camera id per image (0-based)
    model: dict = field(default_factory=dict)  # architecture facts, for people reading the file

    # ------------------------------------------------------------------ building
    @classmethod
    def from_model(cls, cfg, model) -> "ModelCard":
        """The card of a built eval-mode model (:class:`~mbf.modeling.MBF` or the baseline) and its config."""
        backbone = model.backbone
        width = backbone.embed_dim
        blocks = [Block("global", 0, width)]
        if isinstance(model, MBF):
            k = model.num_parts
            names = list(PART_NAMES[1:1 + k]) if len(PART_NAMES) == k + 1 else [f"part {i + 1}" for i in range(k)]
            branches = [""] + (["recovered "] if model.recovery else [])
            for prefix in branches:
                for name in names:
                    start = blocks[-1].stop
                    blocks.append(Block(prefix + name, start, start + width, 1.0 / k))
        dim = int(model.descriptor_dim)
        if blocks[-1].stop != dim:
            raise AssertionError(f"descriptor layout covers {blocks[-1].stop} dims, the model gives {dim}")
        facts = {
            "name": cfg.MODEL.NAME,
            "transformer_type": cfg.MODEL.TRANSFORMER_TYPE,
            "embed_dim": width,
            "depth": backbone.depth,
            "stride": list(backbone.stride),
            "neck_feat": cfg.TEST.NECK_FEAT,
        }
        return cls(Preprocessing.from_cfg(cfg), dim, tuple(blocks), str(cfg.TEST.FEAT_NORM).lower() == "yes",
                   int(backbone.num_cameras), facts)

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> str:
        data = asdict(self)
        data["version"] = CARD_VERSION
        data["inputs"] = {
            "images": f"float32 N x 3 x {self.preprocessing.size[0]} x {self.preprocessing.size[1]}, RGB, already "
                      "resized, scaled to [0, 1] and normalised with mean/std (do not normalise again)",
            **({"cameras": f"int64 N, camera ids in [0, {self.num_cameras - 1}]"} if self.num_cameras else {}),
        }
        data["output"] = f"descriptor float32 N x {self.dim}" + (", L2-normalise before comparing" if self.feat_norm else "")
        return json.dumps(data, indent=1)

    @classmethod
    def from_json(cls, text: str, source: str = "model") -> "ModelCard":
        try:
            data = json.loads(text)
            if data.get("version") != CARD_VERSION:
                raise ValueError(f"card version {data.get('version')!r}, this mbf reads {CARD_VERSION}")
            pre = data["preprocessing"]
            return cls(
                Preprocessing(tuple(pre["size"]), tuple(pre["mean"]), tuple(pre["std"]), pre["interpolation"]),
                int(data["dim"]),
                tuple(Block(b["name"], int(b["start"]), int(b["stop"]), float(b["scale"])) for b in data["layout"]),
                bool(data["feat_norm"]),
                int(data["num_cameras"]),
                dict(data.get("model", {})),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{source}: unreadable mbf model card: {exc}") from None
