"""Weight formats: reading files, one explicit converter per source, and a strict loader.

Sources:
- ImageNet ViT/DeiT checkpoints with timm/jx key names (``jx_vit_base_p16_224-80ecf9dd.pth``,
  DeiT's ``{"model": ...}`` files): :func:`imagenet_to_backbone`.
- State dicts saved by the reference MBF / TransReID ``train.py``: :func:`reference_mbf_to_ours`,
  :func:`reference_transreid_to_ours` (the reference also stores unused copies of blocks;
  those keys are listed here and dropped on purpose).
- Our own ``state_dict()``: loaded as is.
- Each backbone family's pretraining files: the family's own adapter (its
  ``checkpoint_filter``, beside its module), fed by :func:`read_pretrained`; which family a
  file's keys look like is told by the :data:`WEIGHT_FORMATS` the families register, so a file
  of another family is one error naming it and the MODEL.TRANSFORMER_TYPE to set.

Files are read as tensors only: ``torch.save`` files through
:func:`mbf.state_dicts.load_torch_file` (weights-only), ``.safetensors`` files through the
safetensors library (a format without code). TorchScript archives (the OpenAI CLIP release)
are refused with the one command that converts them (:func:`torchscript_error`).
"""
from __future__ import annotations

import logging
import math
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from timm.layers import resample_abs_pos_embed
from torch import nn

from ..errors import CheckpointError, UnsafeCheckpointError
from ..state_dicts import fit_problems, load_torch_file

log = logging.getLogger(__name__)

_LIST_LIMIT = 12


def _names(keys) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:_LIST_LIMIT])
    return shown + (f" ... and {len(keys) - _LIST_LIMIT} more" if len(keys) > _LIST_LIMIT else "")


def read_state_dict(source, what: str = "weights", containers: tuple[str, ...] = ("model", "state_dict"),
                    ) -> dict[str, torch.Tensor]:
    """A state dict from a path or a mapping: unwraps the first of ``containers`` found (``model``
    / ``state_dict``) and strips DistributedDataParallel ``module.`` prefixes. ``.safetensors``
    files are read with safetensors; a TorchScript archive is refused with the conversion to
    run. Raises CheckpointError naming the file."""
    name = "the given state dict"
    if isinstance(source, (str, Path)):
        if not str(source):
            raise CheckpointError(f"no {what} file given (empty path)")
        name = str(source)
        source = _read_file(Path(source), what)
    if not isinstance(source, Mapping):
        raise CheckpointError(f"{what} in {name} is a {type(source).__name__}, expected a state dict")
    for container in containers:
        if isinstance(source.get(container), Mapping):
            source = source[container]
            break
    state = {}
    for key, value in source.items():
        if not torch.is_tensor(value):
            raise CheckpointError(f"{what} in {name}: entry {key!r} is a {type(value).__name__}, not a tensor")
        while key.startswith("module."):
            key = key[len("module."):]
        state[key] = value
    if not state:
        raise CheckpointError(f"{what} in {name} holds no tensors")
    return state


_SAFETENSORS_SUFFIX = ".safetensors"


def _read_file(path: Path, what: str):
    if path.suffix.lower() == _SAFETENSORS_SUFFIX and path.is_file():
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CheckpointError(f"cannot read {what} file {path}: {type(exc).__name__}: {first}") from None
    if is_torchscript_archive(path):
        raise torchscript_error(path, what)
    return load_torch_file(path, f"{what} file")


def is_torchscript_archive(path: Path) -> bool:
    """A zip written by ``torch.jit.save`` (it holds ``constants.pkl`` and compiled ``code/``);
    told from the zip's table of contents alone, nothing in it is read."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
    return any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names)


def torchscript_error(path: Path, what: str = "weights") -> CheckpointError:
    """The one error for a TorchScript archive, with the command that converts it to a state dict."""
    out = path.with_name(path.stem + "_state_dict.pth")
    return CheckpointError(
        f"{what} file {path} is a TorchScript archive (the format of OpenAI's CLIP release). mbf reads tensors "
        "only and never loads TorchScript, which can run code. If you trust the file, convert it once on purpose: "
        f"python -c \"import torch; torch.save(torch.jit.load('{path}', map_location='cpu').state_dict(), "
        f"'{out}')\" and set MODEL.PRETRAIN_PATH to {out}; or take the same weights as a state dict "
        "(open_clip_pytorch_model.bin or open_clip_model.safetensors of the Hugging Face repository "
        "timm/vit_base_patch16_clip_224.openai)")


# ----------------------------------------------------------------------------- weight formats
@dataclass(frozen=True)
class WeightFormat:
    """A kind of weight file told from its keys.

    name: short id; description: for messages ("DINOv2 (facebookresearch release)");
    detect(state) -> bool; suggest(state) -> the MODEL.TRANSFORMER_TYPE that reads it, or a
    sentence saying none does. ``generic`` formats (the plain timm ViT layout) are tried after
    the specific ones.
    """

    name: str
    description: str
    detect: Callable[[Mapping[str, torch.Tensor]], bool]
    suggest: Callable[[Mapping[str, torch.Tensor]], str]
    generic: bool = False


WEIGHT_FORMATS: dict[str, WeightFormat] = {}


def register_weight_format(fmt: WeightFormat) -> WeightFormat:
    """Add a format (a family module registers the formats its adapter reads)."""
    if fmt.name in WEIGHT_FORMATS and WEIGHT_FORMATS[fmt.name] != fmt:
        raise ValueError(f"weight format {fmt.name!r} is registered already")
    WEIGHT_FORMATS[fmt.name] = fmt
    return fmt


def detect_weight_format(state: Mapping[str, torch.Tensor]) -> WeightFormat | None:
    """The registered format ``state``'s keys look like (specific formats first), or None."""
    ordered = sorted(WEIGHT_FORMATS.values(), key=lambda f: f.generic)
    return next((f for f in ordered if f.detect(state)), None)


def check_weight_format(state: Mapping[str, torch.Tensor], accepts: tuple[str, ...], source: str,
                        family: str) -> WeightFormat | None:
    """The format of ``state`` when it is one of ``accepts`` (or unknown: then the strict load
    names what does not fit); a file of another known format is one CheckpointError naming the
    file, the family its keys look like and the MODEL.TRANSFORMER_TYPE to set."""
    fmt = detect_weight_format(state)
    if fmt is None or fmt.name in accepts:
        return fmt
    raise CheckpointError(f"{source}: its keys look like {fmt.description} weights, not {family} weights; "
                          f"{fmt.suggest(state)}")


def width_of(state: Mapping[str, torch.Tensor], *keys: str) -> int:
    """The token width (last dimension) of the first of ``keys`` present in ``state``; 0 if none is."""
    return next((int(state[k].shape[-1]) for k in keys if k in state and state[k].ndim), 0)


def _foreign(what: str) -> Callable[[Mapping[str, torch.Tensor]], str]:
    return lambda state: f"no registered MODEL.TRANSFORMER_TYPE reads {what} (docs/BACKBONES.md lists the families)"


register_weight_format(WeightFormat(
    "swin", "Swin Transformer",
    lambda s: any("relative_position_bias_table" in k or k.startswith("layers.0.blocks.") for k in s),
    _foreign("Swin Transformer weights")))
register_weight_format(WeightFormat(
    "resnet", "ResNet",
    lambda s: "conv1.weight" in s and any(k.startswith("layer1.0.") for k in s),
    _foreign("ResNet weights")))
register_weight_format(WeightFormat(
    "hf_clip", "CLIP (Hugging Face transformers layout)",
    lambda s: any(k.startswith(("vision_model.", "vision_tower.")) for k in s),
    lambda s: ("convert it to the OpenAI / open_clip layout (open_clip_pytorch_model.bin of the same release), which "
               "MODEL.TRANSFORMER_TYPE 'vit_base_patch16_clip_quickgelu' reads")))
register_weight_format(WeightFormat(
    "reid_model", "a whole re-ID model checkpoint (ours or the reference's)",
    lambda s: any(k.startswith(("backbone.", "base.")) for k in s)
    and any(k.startswith(("neck.", "classifier", "bottleneck")) for k in s),
    lambda s: "load it with MODEL.PRETRAIN_CHOICE 'self' (or TEST.WEIGHT), not as backbone pretraining"))


_DINO_PARTS = ("backbone.", "head.")


def read_pretrained(source, what: str) -> dict[str, torch.Tensor]:
    """A backbone's pretraining weights from a path or mapping, before the family's adapter:
    ``model`` / ``state_dict`` / ``teacher`` (a DINO checkpoint) containers are unwrapped and a
    DINO ``MultiCropWrapper``'s ``backbone.`` prefix is removed (its projection ``head.`` dropped)."""
    try:
        state = read_state_dict(source, what, containers=("model", "state_dict", "teacher"))
    except UnsafeCheckpointError as exc:
        if exc.needs and "argparse" in exc.needs and isinstance(source, (str, Path)):
            path = Path(source)
            out = path.with_name(path.stem + "_teacher_backbone.pth")
            raise CheckpointError(
                f"{exc} (a DINO training checkpoint keeps its arguments beside the weights). Extract the "
                "teacher's backbone once, still weights-only with argparse.Namespace alone allowed: python -c "
                "\"import argparse, torch; torch.serialization.add_safe_globals([argparse.Namespace]); "
                f"c = torch.load('{path}', map_location='cpu', weights_only=True)['teacher']; "
                "torch.save({k[9:]: v for k, v in c.items() "
                f"if k.startswith('backbone.')}}, '{out}')\" and set MODEL.PRETRAIN_PATH to {out}"
            ) from None
        raise
    if all(k.startswith(_DINO_PARTS) for k in state) and any(k.startswith("backbone.") for k in state):
        state = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    return state


def source_grid(positions: int, target: tuple[int, int], ratios: tuple[int, ...] = (1,)) -> tuple[int, int]:
    """The (rows, columns) grid of a pretrained position table of ``positions`` patch entries:
    ``target`` itself when the count matches it (a table already on the model's grid), else a
    grid with rows = ratio x columns for the first of ``ratios`` that fits (1: square)."""
    if positions == target[0] * target[1]:
        return tuple(target)
    for ratio in ratios:
        cols = math.isqrt(positions // ratio) if positions >= ratio else 0
        if cols and ratio * cols * cols == positions:
            return ratio * cols, cols
    shapes = " or ".join("square" if r == 1 else f"{r}:1" for r in ratios)
    raise CheckpointError(f"pos_embed grid of {positions} positions is neither the model's {target[0]}x{target[1]} "
                          f"nor {shapes}")


def resize_positions(grid_pos: torch.Tensor, old: tuple[int, int], new: tuple[int, int], interpolation: str,
                     antialias: bool) -> torch.Tensor:
    """Patch position embeddings [1, old_h * old_w, D] resampled to ``new`` (timm's
    ``resample_abs_pos_embed``, align_corners False)."""
    if tuple(old) == tuple(new):
        return grid_pos
    log.info("resized position embedding from %dx%d to %dx%d (%s)", *old, *new, interpolation)
    return resample_abs_pos_embed(grid_pos, new_size=list(new), old_size=list(old), num_prefix_tokens=0,
                                  interpolation=interpolation, antialias=antialias)


def load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], source: str, allow_missing=()) -> None:
    """Copy ``state`` into ``module``; any missing (other than ``allow_missing``), unexpected or
    shape-mismatched key raises CheckpointError naming the keys and shapes."""
    problems = fit_problems(module.state_dict(), state,
                            lambda k: k in allow_missing or k.endswith("num_batches_tracked"), _LIST_LIMIT)
    if problems:
        raise CheckpointError(
            f"{source} does not fit {type(module).__name__} (another architecture or config?): " + " | ".join(problems)
        )
    result = module.load_state_dict(dict(state), strict=False)
    log.debug("loaded %d tensors from %s (left as initialised: %s)", len(state), source, result.missing_keys)


# ----------------------------------------------------------------------------- reference -> ours
# Ordered rules (regex on the reference key, replacement or None to drop); the first match wins.
DROP = None  # a rule's replacement that drops the key
_REFERENCE_MBF_RULES: list[tuple[str, str | None]] = [
    (r"^base\.fc\.", DROP),  # unused 1000-way ImageNet head of the reference backbone
    (r"^base\.", "backbone."),
    (r"^gpart_block\.block_layer\.", "separator.part_block."),
    (r"^gpart_block\.norm_layer\.", "separator.part_norm."),
    (r"^local_block\.", DROP),  # the same tensors as gpart_block.block_layer (aliases)
    (r"^local_norm\.", DROP),  # the same tensors as gpart_block.norm_layer
    (r"^last_block\.", DROP),  # unused copy of the last block
    (r"^last_norm\.", DROP),  # unused copy of the final norm
    (r"^transformerdecoderlayer\.", DROP),  # template the decoder layers were cloned from
    (r"^decoder_norm\.", DROP),  # the same tensors as transformerdecoder.norm
    (r"^transformerdecoder\.norm\.", "decoder.norm."),
    (r"^transformerdecoder\.layers\.(\d+)\.multihead_attn\.", r"decoder.layers.\1.cross_attn."),
    (r"^transformerdecoder\.layers\.(\d+)\.linear1\.", r"decoder.layers.\1.fc1."),
    (r"^transformerdecoder\.layers\.(\d+)\.linear2\.", r"decoder.layers.\1.fc2."),
    (r"^transformerdecoder\.layers\.(\d+)\.norm2\.", r"decoder.layers.\1.norm1."),
    (r"^transformerdecoder\.layers\.(\d+)\.norm3\.", r"decoder.layers.\1.norm2."),
    (r"^query_embed$", "decoder.query_embed"),
    (r"^query_trasform\.conv1d\.", "decoder.to_patches."),
    (r"^patch_classifier\.bn\.", "separator.patch_classifier.bn."),
    (r"^patch_classifier\.classifier\.", "separator.patch_classifier.conv."),
    (r"^bottleneck\.", "neck.bn."),
    (r"^classifier\.", "neck.classifier."),
    (r"^bottleneck_(\d+)_decoder\.", lambda m: f"recovered_necks.{int(m.group(1)) - 1}.bn."),
    (r"^classifier_(\d+)_decoder\.", lambda m: f"recovered_necks.{int(m.group(1)) - 1}.classifier."),
    (r"^bottleneck_(\d+)\.", lambda m: f"part_necks.{int(m.group(1)) - 1}.bn."),
    (r"^classifier_(\d+)\.", lambda m: f"part_necks.{int(m.group(1)) - 1}.classifier."),
]

_REFERENCE_TRANSREID_RULES: list[tuple[str, str | None]] = [
    (r"^base\.fc\.", DROP),
    (r"^base\.", "backbone."),
    (r"^bottleneck\.", "neck.bn."),
    (r"^classifier\.", "neck.classifier."),
]

# (alias prefix, kept prefix): the reference registers these modules twice; both copies must agree.
_REFERENCE_ALIASES = [("local_block.", "gpart_block.block_layer."), ("local_norm.", "gpart_block.norm_layer."),
                      ("decoder_norm.", "transformerdecoder.norm.")]


def rename_keys(state: Mapping[str, torch.Tensor], rules, what: str = "reference checkpoint") -> dict[str, torch.Tensor]:
    """``state`` with each key renamed by the first of ``rules`` ((regex, replacement or DROP))
    that matches it; keys no rule matches are kept as they are."""
    compiled = [(re.compile(pattern), repl) for pattern, repl in rules]
    out, dropped = {}, []
    for key, value in state.items():
        for pattern, repl in compiled:
            match = pattern.match(key)
            if match:
                if repl is DROP:
                    dropped.append(key)
                    key = None
                else:
                    key = pattern.sub(repl, key, count=1)
                break
        if key is not None:
            out[key] = value  # keys no rule knows stay as they are and are reported by load_strict
    log.debug("%s: dropped %d unused or aliased keys", what, len(dropped))
    return out


def is_reference_format(state: Mapping[str, torch.Tensor]) -> bool:
    """Reference checkpoints keep the backbone under ``base.``; ours under ``backbone.``."""
    return any(k.startswith("base.") for k in state)


def reference_mbf_to_ours(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Convert a state dict of the reference MBF model (``build_transformer_local``)."""
    for alias, kept in _REFERENCE_ALIASES:
        for key, value in state.items():
            if key.startswith(alias):
                twin = kept + key[len(alias):]
                if twin in state and not torch.equal(state[twin], value):
                    raise CheckpointError(f"reference checkpoint: {key} and {twin} should be the same tensor but differ")
    return rename_keys(state, _REFERENCE_MBF_RULES)


def reference_transreid_to_ours(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Convert a state dict of the reference global-feature TransReID model (``build_transformer``)."""
    return rename_keys(state, _REFERENCE_TRANSREID_RULES)


# ----------------------------------------------------------------------------- ImageNet -> backbone
_IMAGENET_SKIP = ("head", "head_dist", "dist_token", "pre_logits")


def imagenet_to_backbone(state: Mapping[str, torch.Tensor], backbone: nn.Module) -> dict[str, torch.Tensor]:
    """Adapt a timm/jx ViT or DeiT ImageNet state dict to ``backbone`` (VisionTransformerReID).

    Classifier heads and distillation tokens are skipped; a linear patch projection of old
    checkpoints is reshaped to a convolution; the square grid of position embeddings is resized
    to the backbone's (fH, fW) grid with bilinear interpolation (align_corners False).
    """
    prefix_tokens = 2 if "dist_token" in state else 1
    out = {}
    for key, value in state.items():
        if key.split(".")[0] in _IMAGENET_SKIP:
            continue
        if key == "patch_embed.proj.weight" and value.ndim < 4:
            value = value.reshape(backbone.patch_embed.proj.weight.shape[0], -1, *backbone.patch_embed.proj.kernel_size)
        elif key == "pos_embed":
            value = _resize_pos_embed(value, prefix_tokens, backbone.grid_size)
        out[key] = value
    return out


def _resize_pos_embed(posemb: torch.Tensor, prefix_tokens: int, grid: tuple[int, int]) -> torch.Tensor:
    if posemb.ndim != 3:
        raise CheckpointError(f"pos_embed has shape {tuple(posemb.shape)}, expected [1, N, D]")
    cls_pos = posemb[:, :1]  # a distilled model's second prefix token has no counterpart here
    grid_pos = posemb[:, prefix_tokens:]
    side = math.isqrt(grid_pos.shape[1])
    if side * side != grid_pos.shape[1]:
        raise CheckpointError(f"pos_embed grid of {grid_pos.shape[1]} positions is not square")
    if (side, side) != tuple(grid):
        grid_pos = resample_abs_pos_embed(
            grid_pos, new_size=list(grid), old_size=[side, side], num_prefix_tokens=0,
            interpolation="bilinear", antialias=False,
        )
        log.info("resized position embedding from %dx%d to %dx%d", side, side, *grid)
    return torch.cat((cls_pos, grid_pos), dim=1)
