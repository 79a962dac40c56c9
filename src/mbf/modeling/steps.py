"""The training steps of the architectures: one module per step, so that
DistributedDataParallel sees a single forward and a single backward even though MBF runs the
network twice (holistic and occluded). Patch geometry (stride per axis, patch size) and the
number of parts come from the model.

MBF's data flow (docs/METHOD.md, sections 3, 4, 6):

    holistic image --model--> holistic outputs
                   --parser or stored labels--> pixel labels --> patch labels x salient(h)
    random erasing + background augmentation (another identity's person or a background patch)
                   --> occluded image, erased rectangle, covered patches
    patch labels, minus erased (>70%) and covered patches --model(occluded)--> x salient(o)
    criterion(holistic outputs, occluded outputs, targets, both refined label maps)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..augmentation import background_augmentation, pick_other_identity, random_erasing
from ..parsing.mask_ops import ERASE_THRESHOLD, drop_covered, erase_patches, keep_salient, patch_labels


@dataclass
class StepOutput:
    loss: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    accuracy: torch.Tensor | None = None


def _accuracy(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (scores.detach().argmax(dim=1) == target).float().mean()


class MBFStep(nn.Module):
    """Holistic pass, mask refinement, background augmentation, occluded pass and losses.

    ``parser`` (a frozen teacher: images -> pixel labels) is used only when the batch carries
    no ``mask``. The patch grid and the number of parts are the model's (``model.patch_grid``,
    ``model.num_parts``).
    """

    def __init__(
        self,
        model: nn.Module,
        criterion,
        parser: nn.Module | None,
        erase_prob: float,
        beta: float,
        erase_attempts: int = 1,
        erase_threshold: float = ERASE_THRESHOLD,
    ):
        super().__init__()
        self.model = model
        self.criterion = criterion
        self.parser = parser
        if parser is not None:
            parser.requires_grad_(False)
        self.erase_prob = erase_prob
        self.erase_attempts = erase_attempts
        self.beta = beta
        self.erase_threshold = erase_threshold

    def train(self, mode: bool = True):
        super().train(mode)
        if self.parser is not None:
            self.parser.eval()  # the teacher always runs with its running statistics
        return self

    @torch.no_grad()
    def _pixel_labels(self, batch: dict) -> torch.Tensor:
        if "mask" in batch:
            return batch["mask"]
        if self.parser is None:
            raise RuntimeError("batch has no 'mask' and no online parser was configured")
        return self.parser(batch["img"])

    def forward(self, batch: dict, generator: torch.Generator | None = None) -> StepOutput:
        img, pid = batch["img"], batch["pid"]
        cam, view = batch["camid"], batch["viewid"]

        grid = self.model.patch_grid
        out_h = self.model(img, label=pid, cam_label=cam, view_label=view, occluded=False)
        with torch.no_grad():
            pixels = self._pixel_labels(batch)
            labels_h = patch_labels(pixels, self.model.num_parts, grid.stride, kernel=grid.patch_size)
            labels_h = keep_salient(labels_h, out_h.salient_idx)

            other = pick_other_identity(pid, generator=generator)
            img_occ, rects = random_erasing(
                img, self.erase_prob, max_attempts=self.erase_attempts, generator=generator
            )
            img_occ, covered = background_augmentation(
                img_occ, img[other], pixels[other], labels_h[other], self.beta, grid.stride,
                patch_size=grid.patch_size, generator=generator,
            )
            labels_o = erase_patches(
                labels_h, rects, grid.stride, kernel=grid.patch_size, threshold=self.erase_threshold
            )
            labels_o = drop_covered(labels_o, covered)

        out_o = self.model(img_occ, label=pid, cam_label=cam, view_label=view, occluded=True)
        with torch.no_grad():
            labels_o = keep_salient(labels_o, out_o.salient_idx)
        loss, terms = self.criterion(out_h, out_o, pid, labels_h, labels_o)
        return StepOutput(loss, terms, _accuracy(out_h.scores[0], pid))


class GlobalStep(nn.Module):
    """Training step of the global-feature baseline (TransReID-style): random erasing, one pass,
    ID + triplet on the CLS feature."""

    def __init__(self, model: nn.Module, criterion, erase_prob: float = 0.0, erase_attempts: int = 1):
        super().__init__()
        self.model = model
        self.criterion = criterion
        self.erase_prob = erase_prob
        self.erase_attempts = erase_attempts

    def forward(self, batch: dict, generator: torch.Generator | None = None) -> StepOutput:
        pid = batch["pid"]
        img = batch["img"]
        if self.erase_prob > 0:
            with torch.no_grad():
                img, _ = random_erasing(img, self.erase_prob, max_attempts=self.erase_attempts, generator=generator)
        out = self.model(img, label=pid, cam_label=batch["camid"], view_label=batch["viewid"])
        loss, terms = self.criterion(out, None, pid, None, None)
        return StepOutput(loss, terms, _accuracy(out.scores[0], pid))
