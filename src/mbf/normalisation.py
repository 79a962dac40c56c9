"""Input normalisations known by name: (mean, std) on [0, 1] RGB pixels.

Kept free of torch so the command line can name them in its help without importing it.
"""
from __future__ import annotations

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
