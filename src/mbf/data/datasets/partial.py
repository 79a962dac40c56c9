"""Partial re-ID benchmarks: Partial-REID and Partial-iLIDS, test-only, trained on Market-1501.

Each person has partial crops (query) and whole-body crops (gallery) and the releases carry
no camera labels: query crops get camera 0 and gallery crops camera 1, as the common readers
do, so that the evaluator's same-camera filter never hides a true match.
"""
from __future__ import annotations

from .base import PID_IS_STEM, DatasetReader, FolderSource, PidRule, pid_before_underscore, register_dataset
from .market import TrainsOnMarket

QUERY_CAMID, GALLERY_CAMID = 0, 1


class PartialStyle(TrainsOnMarket, DatasetReader):
    """``<dataset_dir>/partial_body_images`` (query) and ``whole_body_images`` (gallery)."""

    dataset_dir = ""
    query_dir = "partial_body_images"
    gallery_dir = "whole_body_images"
    extensions = (".jpg",)
    rule: PidRule

    def test_sources(self):
        base = self.root / self.dataset_dir
        return {"query": FolderSource(base / self.query_dir, self.extensions, self.rule, QUERY_CAMID),
                "gallery": FolderSource(base / self.gallery_dir, self.extensions, self.rule, GALLERY_CAMID)}


@register_dataset("partial_reid")
class PartialREID(PartialStyle):
    """Partial-REID (Zheng et al., ICCV 2015): 60 people, 5 partial and 5 whole-body crops each.

    As downloaded: ``Partial_REID/partial_body_images/<pid>_<nn>.jpg`` and
    ``Partial_REID/whole_body_images/<pid>_<nn>.jpg``; the pid is the number before the first ``_``.
    """

    title = "Partial-REID"
    dataset_dir = "Partial_REID"
    rule = pid_before_underscore("001_01.jpg", "<pid>_<nn>.jpg")
    published = {"query": (60, 300), "gallery": (60, 300)}


@register_dataset("partial_ilids")
class PartialILIDS(PartialStyle):
    """Partial-iLIDS (He et al., CVPR 2018, from iLIDS): 119 people, one partial and one whole crop each.

    As downloaded: ``Partial_iLIDS/partial_body_images/<pid>.jpg`` and
    ``Partial_iLIDS/whole_body_images/<pid>.jpg``; the pid is the file stem.
    """

    title = "Partial-iLIDS"
    dataset_dir = "Partial_iLIDS"
    rule = PID_IS_STEM
    published = {"query": (119, 119), "gallery": (119, 119)}
