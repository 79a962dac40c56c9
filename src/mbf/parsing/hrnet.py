"""HRNet segmentation network (Sun et al.) with the per-stage ``DOWNSAMPLE`` variant of the parser.

The module names follow the authors' checkpoint (``conv1``, ``layer1``, ``transition1``,
``stage2`` ... ``last_layer``) so it loads without renaming. Configured by
``HUMAN_PARSING.EXTRA``: stage 1 is the fixed stem (64 channels, four bottlenecks); stages
2-4 each give NUM_MODULES, NUM_BRANCHES, BLOCK (BASIC / BOTTLENECK), NUM_BLOCKS,
NUM_CHANNELS and DOWNSAMPLE, the stride with which that stage's new lowest-resolution branch
is made (the parser's stage 4 uses 1: its fourth branch stays at the third's resolution).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

BN_MOMENTUM = 0.1
STEM_CHANNELS = 64
STEM_BLOCKS = 4


def _conv_bn(cin: int, cout: int, kernel: int, stride: int, relu: bool) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout, momentum=BN_MOMENTUM)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


BLOCKS = {"BASIC": BasicBlock, "BOTTLENECK": Bottleneck}


def _residual_layer(block, cin: int, planes: int, num_blocks: int) -> nn.Sequential:
    """``num_blocks`` blocks; the first gets a 1x1 projection when the width changes."""
    cout = planes * block.expansion
    projection = None if cin == cout else _conv_bn(cin, cout, 1, 1, relu=False)
    layers = [block(cin, planes, projection)] + [block(cout, planes) for _ in range(1, num_blocks)]
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class StageSpec:
    num_modules: int
    block: type
    num_blocks: tuple
    num_channels: tuple
    downsample: int

    @property
    def num_branches(self) -> int:
        return len(self.num_channels)

    @property
    def out_channels(self) -> list[int]:
        return [c * self.block.expansion for c in self.num_channels]

    @classmethod
    def from_config(cls, name: str, node) -> "StageSpec":
        def get(key, default=None):
            if key in node:
                return node[key]
            if default is None:
                raise ConfigError(f"HUMAN_PARSING.EXTRA.{name}.{key} is missing")
            return default

        block = str(get("BLOCK")).upper()
        if block not in BLOCKS:
            raise ConfigError(f"HUMAN_PARSING.EXTRA.{name}.BLOCK must be one of {sorted(BLOCKS)}, got {block!r}")
        spec = cls(int(get("NUM_MODULES")), BLOCKS[block], tuple(get("NUM_BLOCKS")), tuple(get("NUM_CHANNELS")),
                   int(get("DOWNSAMPLE", 2)))
        branches = int(get("NUM_BRANCHES"))
        if not (branches == len(spec.num_blocks) == len(spec.num_channels)):
            raise ConfigError(
                f"HUMAN_PARSING.EXTRA.{name}: NUM_BRANCHES ({branches}), NUM_BLOCKS ({list(spec.num_blocks)}) and "
                f"NUM_CHANNELS ({list(spec.num_channels)}) must agree"
            )
        return spec


class HighResolutionModule(nn.Module):
    """Parallel branches, then every branch receives the sum of all (resampled) branches."""

    def __init__(self, spec: StageSpec, in_channels: list[int]):
        super().__init__()
        n = spec.num_branches
        self.branches = nn.ModuleList(
            _residual_layer(spec.block, in_channels[i], spec.num_channels[i], spec.num_blocks[i]) for i in range(n)
        )
        channels = spec.out_channels
        self.out_channels = channels
        self.fuse_layers = None
        if n > 1:
            self.fuse_layers = nn.ModuleList(
                nn.ModuleList(self._fuse(j, i, channels, spec.downsample, n) for j in range(n)) for i in range(n)
            )
        self.relu = nn.ReLU(inplace=True)

    @staticmethod
    def _fuse(src: int, dst: int, channels: list[int], last_stride: int, n: int) -> nn.Module | None:
        if src == dst:
            return None
        if src > dst:  # lower resolution: 1x1 projection, upsampled in forward
            return _conv_bn(channels[src], channels[dst], 1, 1, relu=False)
        steps = []  # higher resolution: strided 3x3 convolutions, one per resolution step
        for k in range(dst - src):
            last = k == dst - src - 1
            stride = last_stride if (last and dst == n - 1) else 2
            cout = channels[dst] if last else channels[src]
            steps.append(_conv_bn(channels[src], cout, 3, stride, relu=not last))
        return nn.Sequential(*steps)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if self.fuse_layers is None:
            return xs
        out = []
        for i, layers in enumerate(self.fuse_layers):
            y = xs[0] if i == 0 else layers[0](xs[0])
            for j in range(1, len(xs)):
                if j == i:
                    y = y + xs[j]
                elif j > i:
                    y = y + F.interpolate(layers[j](xs[j]), size=xs[i].shape[-2:], mode="bilinear", align_corners=False)
                else:
                    y = y + layers[j](xs[j])
            out.append(self.relu(y))
        return out


class HRNet(nn.Module):
    """Logits [B, num_classes, H/4, W/4] for images [B, 3, H, W]."""

    def __init__(self, stages: list[StageSpec], num_classes: int, final_conv_kernel: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(3, STEM_CHANNELS, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(STEM_CHANNELS, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(STEM_CHANNELS, STEM_CHANNELS, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(STEM_CHANNELS, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = _residual_layer(Bottleneck, STEM_CHANNELS, STEM_CHANNELS, STEM_BLOCKS)
        channels = [STEM_CHANNELS * Bottleneck.expansion]
        for index, spec in enumerate(stages, start=2):
            setattr(self, f"transition{index - 1}", self._transition(channels, spec.out_channels, spec.downsample))
            channels = spec.out_channels
            modules = [HighResolutionModule(spec, channels) for _ in range(spec.num_modules)]
            setattr(self, f"stage{index}", nn.Sequential(*modules))
        self.num_stages = len(stages)
        width = sum(channels)
        self.last_layer = nn.Sequential(
            nn.Conv2d(width, width, 1),
            nn.BatchNorm2d(width, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, num_classes, final_conv_kernel, 1, 1 if final_conv_kernel == 3 else 0),
        )

    @staticmethod
    def _transition(prev: list[int], cur: list[int], stride: int) -> nn.ModuleList:
        layers = []
        for i, cout in enumerate(cur):
            if i < len(prev):
                layers.append(None if prev[i] == cout else _conv_bn(prev[i], cout, 3, 1, relu=True))
            else:  # a new, lower-resolution branch made from the previous lowest one
                steps = [
                    _conv_bn(prev[-1], cout if j == i - len(prev) else prev[-1], 3, stride, relu=True)
                    for j in range(i + 1 - len(prev))
                ]
                layers.append(nn.Sequential(*steps))
        return nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        xs = [self.layer1(x)]
        for index in range(2, self.num_stages + 2):
            # as in the original HRNet, a transition that exists reads the lowest-resolution output
            transition = getattr(self, f"transition{index - 1}")
            xs = [xs[i] if t is None else t(xs[-1]) for i, t in enumerate(transition)]
            xs = getattr(self, f"stage{index}")(xs)
        size = xs[0].shape[-2:]
        xs = [xs[0]] + [F.interpolate(x, size=size, mode="bilinear", align_corners=False) for x in xs[1:]]
        return self.last_layer(torch.cat(xs, 1))


def build_hrnet(extra, num_classes: int) -> HRNet:
    """The parser network from a ``HUMAN_PARSING.EXTRA`` node (STAGE2..STAGE4, FINAL_CONV_KERNEL)."""
    stages = [StageSpec.from_config(name, extra[name]) for name in ("STAGE2", "STAGE3", "STAGE4") if name in extra]
    if len(stages) != 3:
        missing = [name for name in ("STAGE2", "STAGE3", "STAGE4") if name not in extra]
        raise ConfigError(f"HUMAN_PARSING.EXTRA lacks {', '.join(missing)}: copy the EXTRA block of a seed config "
                          "(configs/OCC_Duke/mbf.yml)")
    return HRNet(stages, num_classes, int(extra.get("FINAL_CONV_KERNEL", 1)))
