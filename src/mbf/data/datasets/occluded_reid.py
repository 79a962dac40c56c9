"""Occluded-REID (Zhuo et al., ICME 2018), read as it downloads or in the renamed layout."""
from __future__ import annotations

from .base import DatasetReader, FolderSource, pid_before_underscore, register_dataset
from .market import MarketFolder, TrainsOnMarket

# The rename script that produced the reference's layout gives query crops camera 1 and gallery
# crops camera 3; the downloaded layout gets the same cameras so both give the same SIE inputs.
QUERY_CAMID, GALLERY_CAMID = 0, 2


@register_dataset("occ_reid")
class OccludedREID(TrainsOnMarket, DatasetReader):
    """Occluded-REID: 200 people taken with a mobile camera, 5 occluded and 5 whole-body crops each.

    It has no training set: models train on Market-1501 and test on the occluded crops (query)
    against the whole-body ones (gallery). As downloaded::

        Occluded_REID/occluded_body_images/<pid>/<pid>_<nn>.tif    query, camera 1
        Occluded_REID/whole_body_images/<pid>/<pid>_<nn>.tif       gallery, camera 3

    The pid is the file name's prefix. The release has no camera labels; cameras 1 and 3 (0-based
    0 and 2) are those of the widely used rename script, whose layout the reference reads::

        Occluded_REID/query/<pid>_c1_<nn>.tif
        Occluded_REID/bounding_box_test/<pid>_c3_<nn>.tif

    Whichever layout is present is read (the download's when both are); the two give the same
    pids, cameras and order.
    """

    title = "Occluded-REID"
    dataset_dir = "Occluded_REID"
    query_dir = "occluded_body_images"
    gallery_dir = "whole_body_images"
    renamed_query_dir = "query"
    renamed_gallery_dir = "bounding_box_test"
    extensions = (".tif",)
    published = {"query": (200, 1000), "gallery": (200, 1000)}
    notes = ("or, renamed: Occluded_REID/query/<pid>_c1_<nn>.tif, Occluded_REID/bounding_box_test/<pid>_c3_<nn>.tif",)

    def renamed(self) -> bool:
        """True when only the renamed layout is present."""
        base = self.root / self.dataset_dir
        return not (base / self.query_dir).is_dir() and (base / self.renamed_query_dir).is_dir()

    def test_sources(self):
        base = self.root / self.dataset_dir
        if self.renamed():
            return {"query": MarketFolder(base / self.renamed_query_dir, self.extensions),
                    "gallery": MarketFolder(base / self.renamed_gallery_dir, self.extensions)}
        rule = pid_before_underscore("001_01.tif", "<pid>_<nn>.tif")
        return {"query": FolderSource(base / self.query_dir, self.extensions, rule, QUERY_CAMID, nested=True),
                "gallery": FolderSource(base / self.gallery_dir, self.extensions, rule, GALLERY_CAMID, nested=True)}
