"""Class sets: names and display colours (RGB uint8)."""
from __future__ import annotations

import numpy as np

# Cityscapes' 7 categories, used by the synthetic scenes.
CITYSCAPES_7 = ('flat', 'construction', 'object', 'nature', 'sky', 'human', 'vehicle')
CITYSCAPES_7_COLORS = np.array([
    [128, 64, 128],   # flat
    [70, 70, 70],     # construction
    [250, 170, 30],   # object
    [107, 142, 35],   # nature
    [70, 130, 180],   # sky
    [220, 20, 60],    # human
    [0, 0, 142],      # vehicle
], np.uint8)
# The class count of the synthetic scenes, the shipped models and every default.
DEFAULT_NUM_CLASSES = len(CITYSCAPES_7)

FLAT, CONSTRUCTION, OBJECT, NATURE, SKY, HUMAN, VEHICLE = range(DEFAULT_NUM_CLASSES)


def class_colors(num_classes: int) -> np.ndarray:
    """(num_classes, 3) uint8 colours: the Cityscapes-7 palette, then a fixed pseudo-random one."""
    if num_classes <= len(CITYSCAPES_7_COLORS):
        return CITYSCAPES_7_COLORS[:num_classes].copy()
    rng = np.random.default_rng(7)
    extra = rng.integers(30, 226, size=(num_classes - len(CITYSCAPES_7_COLORS), 3), dtype=np.uint8)
    return np.concatenate([CITYSCAPES_7_COLORS, extra])
