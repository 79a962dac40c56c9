"""The re-ID datasets, read from their folders as they download; ``DATASETS.NAMES`` picks one.

One module per family, each reader a class registered under its name:

* ``market``: market1501, dukemtmc, occ_duke, synthetic_occ (``bounding_box_train``, ``query``,
  ``bounding_box_test`` of ``<pid>_c<camera>...`` crops);
* ``occluded_reid``: occ_reid (``occluded_body_images`` / ``whole_body_images``, or renamed);
* ``partial``: partial_reid, partial_ilids (``partial_body_images`` / ``whole_body_images``);
* ``p_dukemtmc``: p_dukemtmc (``train`` and ``test``, each whole-body and occluded);
* ``msmt17``: msmt17 (V1 or V2, from its four lists);
* ``custom``: a user's own crops from three CSV lists.

The test-only benchmarks (occ_reid, partial_reid, partial_ilids) train on Market-1501.
:func:`build_dataset` reads one (all splits, or only query and gallery with
:func:`build_test_set`), checks it, logs its statistics and warns when the counts differ
from the published ones; :func:`register_dataset` adds a reader.
"""
from .base import (DATASETS, SPLITS, TEST_SPLITS, DatasetReader, Item, ReIDDataset, Source, build_dataset, build_test_set,
                   get_reader, register_dataset, relabel)
from .market import JUNK_PID, NAME_PATTERN, parse_name
from . import market, occluded_reid, partial, p_dukemtmc, msmt17, custom  # noqa: E402,F401  (registration)

__all__ = [
    "DATASETS", "JUNK_PID", "NAME_PATTERN", "SPLITS", "TEST_SPLITS", "DatasetReader", "Item", "ReIDDataset", "Source",
    "build_dataset", "build_test_set", "get_reader", "parse_name", "register_dataset", "relabel",
]
