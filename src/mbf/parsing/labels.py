"""The parser's 10 classes and how they merge into the 5 labels MBF learns (docs/METHOD.md, section 3)."""
from __future__ import annotations

import numpy as np

from ..parts import BACKGROUND, HEAD, LOWER, NUM_PARTS, PART_NAMES, SHOES, UPPER  # noqa: F401  (re-exported)

# the parser's classes
PARSER_CLASSES = ("background", "hair", "upper clothes", "lower clothes", "shoes",
                  "bag", "hat", "face", "arm", "leg")

# parser class -> part label: bag and arms join the upper body, hat and face the head,
# bare legs become background
MERGE = np.array([BACKGROUND, HEAD, UPPER, LOWER, SHOES, UPPER, HEAD, HEAD, UPPER, BACKGROUND], dtype=np.uint8)
