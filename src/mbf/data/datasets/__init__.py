"""The re-ID datasets, read from their folders as they download; ``DATASETS.NAMES`` picks one.

==============  ==============================================  ==================================  =======
name            train                                           query / gallery                     cameras
==============  ==============================================  ==================================  =======
market1501      market1501/bounding_box_train                   market1501/query, bounding_box_test   1-6
dukemtmc        DukeMTMC-reID/bounding_box_train                DukeMTMC-reID/...                    1-8
occ_duke        Occluded_Duke/bounding_box_train                Occluded_Duke/...                    1-8
occ_reid        market1501/bounding_box_train                   Occluded_REID/occluded_body_images,  q 1, g 3
                                                                whole_body_images (.tif)
partial_reid    market1501/bounding_box_train                   Partial_REID/partial_body_images,    q 0, g 1
                                                                whole_body_images                    (0-based)
partial_ilids   market1501/bounding_box_train                   Partial_iLIDS/...                    q 0, g 1
p_dukemtmc      P-DukeMTMC-reID/train/{whole,occluded}_body_images  P-DukeMTMC-reID/test/...         occl. 0, whole 1
msmt17          msmt17/MSMT17_V1/train + list_train/val.txt     MSMT17_V1/test + list_query/gallery  1-15
custom          <CUSTOM_DIR>/train.csv                          <CUSTOM_DIR>/query.csv, gallery.csv  camid column
synthetic_occ   Synthetic_Occluded/bounding_box_train           Synthetic_Occluded/...               1-6
==============  ==============================================  ==================================  =======

Each reader is a class registered with :func:`register_dataset`; :func:`build_dataset` reads
one (all splits, or only query and gallery with :func:`build_test_set`), checks it and logs
its statistics, warning when the counts differ from the published ones.
"""
from .base import (DATASETS, SPLITS, TEST_SPLITS, DatasetReader, ReIDDataset, Source, build_dataset, build_test_set,
                   get_reader, register_dataset, relabel)
from .market import JUNK_PID, NAME_PATTERN, parse_name
from . import market, occluded_reid, partial, p_dukemtmc, msmt17, custom  # noqa: E402,F401  (registration)

__all__ = [
    "DATASETS", "JUNK_PID", "NAME_PATTERN", "SPLITS", "TEST_SPLITS", "DatasetReader", "ReIDDataset", "Source",
    "build_dataset", "build_test_set", "get_reader", "parse_name", "register_dataset", "relabel",
]
