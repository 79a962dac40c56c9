"""What a descriptor model expects and returns, written into exported models and galleries.

A :class:`ModelCard` holds the preprocessing (size, mean, std, interpolation), the
descriptor layout (which dimensions are the global feature, which the body parts) and
whether descriptors are L2-normalised before they are compared (TEST.FEAT_NORM). The ONNX
graph does neither: it takes images already preprocessed as the card says and returns the
raw descriptor, so a program that follows the card can neither skip nor repeat a step.

Exports for consumers that feed one input (``mbf export --camera K --input-normalisation
imagenet``) record two more facts: ``camera``, the camera id fixed in the graph (which then has
no ``cameras`` input), and ``model_normalisation``, the model's own mean and std when the graph
converts its input from the card's ``preprocessing`` normalisation (the consumer's) to the
model's. Both are absent (None) in other cards; cards written before they existed read as such.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

from ..config import switch
from ..data.transforms import TEST_INTERPOLATION, eval_transform
from ..errors import InputError

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
    def from_config(cls, cfg) -> "Preprocessing":
        """INPUT.SIZE_TEST, INPUT.PIXEL_MEAN and INPUT.PIXEL_STD."""
        return cls(tuple(int(v) for v in cfg.INPUT.SIZE_TEST), tuple(float(v) for v in cfg.INPUT.PIXEL_MEAN),
                   tuple(float(v) for v in cfg.INPUT.PIXEL_STD))

    def transform(self):
        """``transform(pil_image)`` -> float tensor [3, H, W], the same steps as ``build_test_transform``."""
        if self.interpolation != TEST_INTERPOLATION:
            raise InputError(f"preprocessing interpolation {self.interpolation!r} is not supported "
                             f"(this version resizes with {TEST_INTERPOLATION!r})")
        return eval_transform(self.size, self.mean, self.std)


@dataclass(frozen=True)
class DescriptorBlock:
    """Dimensions [start, stop) of the descriptor hold ``name``, multiplied by ``scale``."""

    name: str
    start: int
    stop: int
    scale: float = 1.0


@dataclass(frozen=True)
class ModelCard:
    preprocessing: Preprocessing
    dim: int
    layout: tuple[DescriptorBlock, ...]
    feat_norm: bool  # L2-normalise the model's output before comparing (not done by the model itself)
    num_cameras: int  # > 0: the model takes a camera id per image (0-based)
    model: dict = field(default_factory=dict)  # architecture facts, for people reading the file
    camera: int | None = None  # the camera fixed in an exported graph (no cameras input); None: per image
    # the model's own {"mean": [...], "std": [...]} when an exported graph converts its input from
    # preprocessing's mean/std (the consumer's) to it; None: the graph input is normalised as the model's
    model_normalisation: dict | None = None

    # ------------------------------------------------------------------ graph variants
    def for_graph(self, camera: int | None = None, mean=None, std=None) -> "ModelCard":
        """The card of an export with ``camera`` fixed in its graph and/or taking images normalised
        with ``mean``/``std`` (converted to the model's normalisation inside the graph)."""
        if camera is not None:
            if not self.num_cameras:
                raise InputError(f"camera {camera}: this model has no camera embeddings, so there is no camera to fix")
            if not 0 <= int(camera) < self.num_cameras:
                raise InputError(f"camera {camera} is not a camera of the model (0..{self.num_cameras - 1})")
            camera = int(camera)
        card = replace(self, camera=camera)
        if mean is None and std is None:
            return card
        if mean is None or std is None:
            raise InputError("an input normalisation needs both its mean and its std")
        mean, std = _triple(mean, "mean"), _triple(std, "std")
        if any(v <= 0 for v in std):
            raise InputError(f"input std must be positive, got {list(std)}")
        pre = self.preprocessing
        own = self.model_normalisation or {"mean": list(pre.mean), "std": list(pre.std)}
        if (mean, std) == (tuple(own["mean"]), tuple(own["std"])):  # the model's own: nothing to convert
            return replace(card, preprocessing=replace(pre, mean=mean, std=std), model_normalisation=None)
        return replace(card, preprocessing=replace(pre, mean=mean, std=std), model_normalisation=own)

    def input_conversion(self) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """(scale, shift) per channel taking a graph input normalised as ``preprocessing`` says to the
        model's normalisation (x * scale + shift), or None when they are the same."""
        if not self.model_normalisation:
            return None
        pre, own = self.preprocessing, self.model_normalisation
        scale = tuple(s / m_s for s, m_s in zip(pre.std, own["std"]))
        shift = tuple((m - m_m) / m_s for m, m_m, m_s in zip(pre.mean, own["mean"], own["std"]))
        return scale, shift

    # ------------------------------------------------------------------ building
    @classmethod
    def for_model(cls, model, preprocessing: Preprocessing, feat_norm: bool, facts: dict | None = None) -> "ModelCard":
        """The card of a built eval-mode model: its descriptor layout (``model.descriptor_layout()``)
        and cameras, the ``preprocessing`` of its input and whether to L2-normalise its output."""
        layout = tuple(DescriptorBlock(*block) for block in model.descriptor_layout())
        dim = int(model.descriptor_dim)
        if layout[-1].stop != dim:
            raise AssertionError(f"descriptor layout covers {layout[-1].stop} dims, the model gives {dim}")
        return cls(preprocessing, dim, layout, bool(feat_norm), int(model.backbone.num_cameras), dict(facts or {}))

    @classmethod
    def from_config(cls, cfg, model) -> "ModelCard":
        """The card of ``model`` (built from ``cfg``): INPUT.* preprocessing, TEST.FEAT_NORM, and the
        architecture facts for people reading the file."""
        backbone = model.backbone
        facts = {
            "name": cfg.MODEL.NAME,
            "transformer_type": cfg.MODEL.TRANSFORMER_TYPE,
            "embed_dim": backbone.embed_dim,
            "depth": backbone.depth,
            "stride": list(backbone.stride),
            "neck_feat": cfg.TEST.NECK_FEAT,
        }
        return cls.for_model(model, Preprocessing.from_config(cfg), switch(cfg.TEST.FEAT_NORM, "TEST.FEAT_NORM"),
                             facts)

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> str:
        data = asdict(self)
        for key in ("camera", "model_normalisation"):  # written only when set: other cards stay as they were
            if data[key] is None:
                del data[key]
        data["version"] = CARD_VERSION
        converted = (" (converted to the model's normalisation, model_normalisation, inside the graph)"
                     if self.model_normalisation else "")
        data["inputs"] = {
            "images": f"float32 N x 3 x {self.preprocessing.size[0]} x {self.preprocessing.size[1]}, RGB, already "
                      f"resized, scaled to [0, 1] and normalised with mean/std{converted} (do not normalise again)",
            **({"cameras": f"int64 N, camera ids in [0, {self.num_cameras - 1}]"}
               if self.num_cameras and self.camera is None else {}),
        }
        if self.camera is not None:
            data["inputs"]["note"] = f"camera {self.camera} of {self.num_cameras} is fixed in the graph (no cameras input)"
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
                tuple(DescriptorBlock(b["name"], int(b["start"]), int(b["stop"]), float(b["scale"]))
                      for b in data["layout"]),
                bool(data["feat_norm"]),
                int(data["num_cameras"]),
                dict(data.get("model", {})),
                None if data.get("camera") is None else int(data["camera"]),
                _normalisation(data.get("model_normalisation")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{source}: unreadable mbf model card: {exc}") from None


def _triple(values, what: str) -> tuple[float, float, float]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        out = ()
    if len(out) != 3:
        raise InputError(f"input {what} must be three numbers (R, G, B), got {values!r}")
    return out


def _normalisation(value) -> dict | None:
    """A card's ``model_normalisation`` entry: None, or {"mean": 3 floats, "std": 3 floats}."""
    if value is None:
        return None
    return {"mean": list(_triple(value["mean"], "mean")), "std": list(_triple(value["std"], "std"))}
