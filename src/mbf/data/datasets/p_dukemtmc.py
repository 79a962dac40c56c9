"""P-DukeMTMC-reID (Zhuo et al., ICME 2018): DukeMTMC-reID people seen both occluded and whole."""
from __future__ import annotations

from .base import ConcatSource, DatasetReader, FolderSource, pid_before_underscore, register_dataset

# The common readers' fixed convention (BPBreID, PVPM): occluded crops camera 0, whole-body camera 1.
OCCLUDED_CAMID, WHOLE_CAMID = 0, 1


@register_dataset("p_dukemtmc")
class PDukeMTMCReID(DatasetReader):
    """P-DukeMTMC-reID: 24,143 images of 1,299 identities, each with occluded and whole-body crops.

    As downloaded::

        P-DukeMTMC-reID/train/whole_body_images/<pid>/<pid>_c<cam>_f<frame>.jpg
        P-DukeMTMC-reID/train/occluded_body_images/<pid>/...jpg
        P-DukeMTMC-reID/test/occluded_body_images/<pid>/...jpg      query
        P-DukeMTMC-reID/test/whole_body_images/<pid>/...jpg         gallery

    The pid is the number before the file name's first ``_``. Cameras follow the common
    readers' fixed convention, not the DukeMTMC camera in the name: occluded crops camera 0,
    whole-body crops camera 1 (so training has two cameras, and a query never meets a gallery
    crop of its own camera). Training reads the whole-body crops, then the occluded ones.
    Counts are those reported by the papers that use it (665 training, 634 test identities).
    """

    title = "P-DukeMTMC-reID"
    dataset_dir = "P-DukeMTMC-reID"
    whole_dir = "whole_body_images"
    occluded_dir = "occluded_body_images"
    extensions = (".jpg",)
    published = {"train": (665, 12927), "query": (634, 2163), "gallery": (634, 9053)}

    def sources(self):
        base = self.root / self.dataset_dir
        rule = pid_before_underscore("0005_c2_f0046985.jpg", "<pid>_*.jpg")

        def folder(split: str, sub: str, camid: int) -> FolderSource:
            return FolderSource(base / split / sub, self.extensions, rule, camid, nested=True)

        return {
            "train": ConcatSource([folder("train", self.whole_dir, WHOLE_CAMID),
                                   folder("train", self.occluded_dir, OCCLUDED_CAMID)]),
            "query": folder("test", self.occluded_dir, OCCLUDED_CAMID),
            "gallery": folder("test", self.whole_dir, WHOLE_CAMID),
        }
