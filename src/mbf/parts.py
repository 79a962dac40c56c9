"""The part labels MBF learns, defined once for the parser, the label files, the model, the
losses and the synthetic generator: 0 background, then the K = 4 body parts."""

BACKGROUND, HEAD, UPPER, LOWER, SHOES = 0, 1, 2, 3, 4
NUM_PARTS = 4  # body parts besides the background
PART_NAMES = ("background", "head", "upper body", "lower body", "shoes")
