"""Part labels: the parser's 10 classes and the 5 labels MBF learns (METHOD.md section 3)."""
from __future__ import annotations

import numpy as np

# merged part labels, used everywhere after parsing
BACKGROUND, HEAD, UPPER, LOWER, SHOES = 0, 1, 2, 3, 4
NUM_PARTS = 4  # body parts besides the background
PART_NAMES = ("background", "head", "upper body", "lower body", "shoes")

# the parser's classes
PARSER_CLASSES = ("background", "hair", "upper clothes", "lower clothes", "shoes",
                  "bag", "hat", "face", "arm", "leg")

# parser class -> part label: bag and arms join the upper body, hat and face the head,
# bare legs become background
MERGE = np.array([BACKGROUND, HEAD, UPPER, LOWER, SHOES, UPPER, HEAD, HEAD, UPPER, BACKGROUND], dtype=np.uint8)
