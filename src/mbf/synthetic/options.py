"""Constants of the dataset layout and the options that shape a synthetic dataset."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import DatasetError
from ..parts import BACKGROUND, HEAD, LOWER, SHOES, UPPER  # noqa: F401  (the part labels, re-exported)

# 2: distinct colours, no look-alikes, milder occlusion; 3: cut-off bodies as clipped boxes; 4: identities kept
# apart region by region (coarse layouts, hats, bags, shoes), occluders in clothing colours, cut-offs at body scale;
# 5: the top's two colours kept apart within a group too
GENERATOR_VERSION = 5
DATASET_DIR_NAME = "Synthetic_Occluded"  # folder under DATASETS.ROOT_DIR read by `synthetic_occ`
TRAIN_DIR, QUERY_DIR, GALLERY_DIR = "bounding_box_train", "query", "bounding_box_test"
SPLIT_DIRS = (TRAIN_DIR, QUERY_DIR, GALLERY_DIR)
MASK_DIR = "masks"
MANIFEST_NAME = "synthetic.json"
ANNOTATIONS_NAME = "annotations.csv"
_INCOMPLETE_MARKER = ".synthetic_incomplete"
_FORMAT = "mbf-synthetic"
# the options `mbf synth` sets by flag (the others come from the manifest when regenerating, else the defaults)
CLI_FLAGS = {"num_ids": "--ids", "num_distractor_ids": "--distractors", "num_cameras": "--cameras",
             "train_images_per_id": "--train-per-id"}


OCCLUDER_KINDS = ("car", "pole", "box", "bush", "barrier", "person", "cutoff")
# how an occluder is drawn: "object" (the dataset); "background" paints its pixels with the
# background behind it (the same body pixels hidden, nothing left to mistake for the person; a
# frame cut is drawn the same in both); "none" leaves it out
# (the holistic version of the same image). The last two are diagnostics: they split an
# occluded query's loss into hidden information and distraction.
OCCLUDER_FILLS = ("object", "background", "none")


@dataclass(frozen=True)
class SynthOptions:
    """Everything besides the seed that shapes the dataset (all recorded in the manifest)."""

    num_ids: int = 300  # identities with images, split into train and test by test_fraction
    test_fraction: float = 1 / 3
    num_distractor_ids: int = 50  # extra identities that appear only in the gallery
    num_cameras: int = 4
    height: int = 128
    width: int = 64
    train_images_per_id: int = 8
    query_images_per_id: int = 2  # in distinct cameras
    gallery_images_per_id: int = 6  # covers every camera when >= num_cameras
    distractor_images_per_id: int = 3
    train_occluded: float = 0.15  # fraction of training images with an occluder
    query_occluded: float = 1.0
    gallery_occluded: float = 0.1
    similar_fraction: float = 0.0  # identities that copy another one and change 1-2 attributes (hard negatives)
    lighting: float = 0.7  # scales the cameras' colour casts and per-image brightness jitter (0: none)
    visible_range: tuple = (0.5, 0.9)  # share of the person an occluder leaves visible (retried)
    # occluder mixture (relative weights over OCCLUDER_KINDS)
    occluder_weights: tuple = (0.12, 0.08, 0.12, 0.10, 0.08, 0.35, 0.15)
    jpeg_quality: int = 92
    occluder_fill: str = "object"  # one of OCCLUDER_FILLS (the other two are diagnostics)

    def validate(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise DatasetError(f"synthetic dataset option {what}")

        need(self.num_ids >= 2, f"num_ids must be >= 2, got {self.num_ids}")
        need(0 < self.test_fraction < 1, f"test_fraction must be in (0, 1), got {self.test_fraction}")
        need(2 <= self.num_cameras <= 6, f"num_cameras must be 2..6 (Market names), got {self.num_cameras}")
        need(self.num_ids + self.num_distractor_ids <= 1501,
             f"num_ids + num_distractor_ids must be <= 1501 (Market pids), got {self.num_ids + self.num_distractor_ids}")
        need(self.num_distractor_ids >= 0, f"num_distractor_ids must be >= 0, got {self.num_distractor_ids}")
        need(self.height >= 32 and self.width >= 16, f"image size must be at least 32x16, got {self.height}x{self.width}")
        need(self.train_images_per_id >= 2, f"train_images_per_id must be >= 2, got {self.train_images_per_id}")
        need(1 <= self.query_images_per_id < self.num_cameras,
             f"query_images_per_id must be in 1..num_cameras-1, got {self.query_images_per_id}")
        need(self.gallery_images_per_id >= 2, f"gallery_images_per_id must be >= 2, got {self.gallery_images_per_id}")
        need(self.distractor_images_per_id >= 1 or self.num_distractor_ids == 0,
             f"distractor_images_per_id must be >= 1, got {self.distractor_images_per_id}")
        for name in ("train_occluded", "query_occluded", "gallery_occluded", "similar_fraction"):
            value = getattr(self, name)
            need(0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value}")
        need(len(self.occluder_weights) == len(OCCLUDER_KINDS) and sum(self.occluder_weights) > 0
             and min(self.occluder_weights) >= 0,
             f"occluder_weights needs {len(OCCLUDER_KINDS)} non-negative weights for {OCCLUDER_KINDS}")
        need(self.occluder_fill in OCCLUDER_FILLS,
             f"occluder_fill must be one of {OCCLUDER_FILLS}, got {self.occluder_fill!r}")
        need(50 <= self.jpeg_quality <= 100, f"jpeg_quality must be 50..100, got {self.jpeg_quality}")
        need(0.0 <= self.lighting <= 2.0, f"lighting must be in [0, 2], got {self.lighting}")
        vr = tuple(self.visible_range)
        need(len(vr) == 2 and 0.0 <= vr[0] < vr[1] <= 1.0,
             f"visible_range must be (low, high) with 0 <= low < high <= 1, got {self.visible_range}")

    @property
    def num_test_ids(self) -> int:
        return min(self.num_ids - 1, max(1, round(self.num_ids * self.test_fraction)))

    @property
    def num_train_ids(self) -> int:
        return self.num_ids - self.num_test_ids

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["occluder_weights"] = list(self.occluder_weights)
        out["visible_range"] = list(self.visible_range)
        return out

    @classmethod
    def from_dict(cls, mapping: dict) -> "SynthOptions":
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in mapping.items() if k in known}
        for name in ("occluder_weights", "visible_range"):
            if name in kwargs:
                kwargs[name] = tuple(kwargs[name])
        return cls(**kwargs)


@dataclass
class SynthSummary:
    """What a generated dataset holds (also the manifest's content)."""

    root: str
    seed: int
    version: int
    options: dict
    counts: dict  # split folder -> number of images
    identities: dict  # train / test / distractor -> number of identities
    occlusion: dict  # split folder -> {occluder kind or "none": count}
    seconds: float = 0.0

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        for volatile in ("root", "seconds"):  # the manifest depends on the seed and options only
            out.pop(volatile)
        out["format"] = _FORMAT
        return out

