"""Datasets in the mtan `.npy` layout of the multi-task literature (NYUv2, Cityscapes) and the
on-disk synthetic scenes written by `jointdistill data synth`.

Layout: ``root/<split>/{image,label,depth}/{i}.npy`` with i = 0..N-1 (synthetic also
``K/{i}.npy``; Cityscapes uses ``label_7`` or ``label_19`` instead of ``label``).

- image: (H, W, 3) or (3, H, W), float in [0, 1] (uint8 0..255 also accepted). A last axis
  of size 3 wins: an array of shape (3, H, 3) is read as (H, W, 3).
- label: (H, W) or (H, W, 1), integral values (stored as float by mtan), -1 = void. 255 is
  also read as void. Any other value outside [0, num_classes) is an error.
- depth: (H, W), (H, W, 1) or (1, H, W). NYUv2 and synthetic: metres, 0 = invalid.
  Cityscapes: disparity, converted to metres by `CityscapesDisparity` (see its docstring and
  docs/datasets.md).

Every sample is THE sample dict of `jointdistill_core.data.sample` (labels void = 255).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from jointdistill_core.classes import DEFAULT_NUM_CLASSES
from jointdistill_core.data.sample import IGNORE_INDEX, Sample, make_sample

KINDS = ('nyuv2', 'cityscapes', 'synthetic')
NUM_CLASSES = {'nyuv2': 13, 'synthetic': DEFAULT_NUM_CLASSES}
CITYSCAPES_CLASS_CHOICES = (7, 19)
MTAN_VOID_LABEL = -1


class DatasetError(ValueError):
    """A dataset on disk is missing, malformed or inconsistent. The message names the file or
    folder at fault."""


@dataclass(frozen=True)
class CityscapesDisparity:
    """Converts mtan's stored Cityscapes depth values to metres.

    mtan's Cityscapes `depth/{i}.npy` holds the official 16-bit disparity PNG value p
    divided by 65535 (the stored maximum 0.4922 equals the raw maximum 32257 / 65535), resized
    with nearest neighbour so values are still disparities of the full 2048-pixel-wide image.
    The official decoding is disparity_px = (p - 1) / 256 for p > 0, hence

        disparity_px = stored * stored_to_pixels - offset_px
        depth_m      = baseline_m * focal_px / disparity_px

    with stored_to_pixels = 65535 / 256 and offset_px = 1 / 256. Stored values <= 0 (mtan
    uses 0, later releases -1) and non-positive disparities are invalid (depth 0). The
    camera constants are Cityscapes' stereo rig at full resolution (focal in pixels of the
    2048-wide image, baseline in metres). The "divided by 65535" step is inferred from the
    value ranges (mtan's preprocessing code is not public): pass other constants if your copy
    was made differently.
    """

    baseline_m: float = 0.209313
    focal_px: float = 2262.52
    stored_to_pixels: float = 65535.0 / 256.0
    offset_px: float = 1.0 / 256.0

    def to_metres(self, stored: np.ndarray) -> np.ndarray:
        """(H, W) stored disparity values -> (H, W) float32 depth in metres, 0 = invalid."""
        stored = stored.astype(np.float64)
        disparity_px = stored * self.stored_to_pixels - self.offset_px
        valid = np.isfinite(stored) & (stored > 0) & (disparity_px > 0)
        depth = np.zeros(stored.shape, np.float64)
        depth[valid] = self.baseline_m * self.focal_px / disparity_px[valid]
        return depth.astype(np.float32)


def load_npy(path: Path) -> np.ndarray:
    """np.load without pickles; any failure becomes a DatasetError naming the file."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DatasetError(f'{path}: unreadable .npy file ({error})') from None


def numeric_stems(folder: Path, suffix: str) -> list[str]:
    """Stems of the files `folder/*<suffix>`, sorted numerically when all are integers."""
    stems = [path.stem for path in folder.iterdir() if path.is_file() and path.suffix == suffix]
    if all(stem.isdigit() for stem in stems):
        return sorted(stems, key=int)
    return sorted(stems)


def check_same_stems(reference: list[str], reference_folder: Path, other: list[str],
                     other_folder: Path) -> None:
    """Raise a DatasetError naming both folders unless they hold the same file stems."""
    if len(reference) != len(other):
        raise DatasetError(f'{other_folder} has {len(other)} files but {reference_folder} has '
                           f'{len(reference)}')
    if set(reference) != set(other):
        missing = sorted(set(reference) - set(other))[:3]
        extra = sorted(set(other) - set(reference))[:3]
        raise DatasetError(f'{other_folder} does not match {reference_folder}: missing '
                           f'{missing}, unexpected {extra}')


def image_to_hwc(array: np.ndarray, path: Path) -> np.ndarray:
    """(H, W, 3) or (3, H, W) uint8/float image -> (H, W, 3), floats checked to lie in [0, 1]."""
    if array.ndim != 3 or 3 not in (array.shape[0], array.shape[2]):
        raise DatasetError(f'{path}: image must be (H, W, 3) or (3, H, W), got {array.shape}')
    if array.shape[2] != 3:
        array = array.transpose(1, 2, 0)
    if array.dtype == np.uint8:
        return array
    if not np.issubdtype(array.dtype, np.floating):
        raise DatasetError(f'{path}: image dtype must be float in [0, 1] or uint8, '
                           f'got {array.dtype}')
    low, high = float(np.min(array)), float(np.max(array))
    if not (low >= -1e-3 and high <= 1.0 + 1e-3):
        raise DatasetError(f'{path}: float image values must lie in [0, 1], found '
                           f'[{low:.3g}, {high:.3g}] (0..255 data must be stored as uint8)')
    return np.clip(array, 0.0, 1.0)


def squeeze_channel(array: np.ndarray, path: Path, what: str) -> np.ndarray:
    """(H, W), (H, W, 1) or (1, H, W) -> (H, W)."""
    if array.ndim == 3 and array.shape[2] == 1:
        return array[:, :, 0]
    if array.ndim == 3 and array.shape[0] == 1:
        return array[0]
    if array.ndim == 2:
        return array
    raise DatasetError(f'{path}: {what} must be (H, W), (H, W, 1) or (1, H, W), got {array.shape}')


def labels_to_ids(array: np.ndarray, num_classes: int, path: Path,
                  void_values: tuple[int, ...] = (MTAN_VOID_LABEL, IGNORE_INDEX)) -> np.ndarray:
    """Integral label map -> int64 ids in [0, num_classes) with every void value mapped to 255."""
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise DatasetError(f'{path}: labels must be integers or integral floats, got {array.dtype}')
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise DatasetError(f'{path}: labels must be integral values, found fractions or NaN')
    ids = array.astype(np.int64)
    void = np.isin(ids, void_values)
    bad = ~void & ((ids < 0) | (ids >= num_classes))
    if bad.any():
        raise DatasetError(f'{path}: label value {int(ids[bad][0])} is neither a class id in '
                           f'[0, {num_classes}) nor void {list(void_values)}')
    ids[void] = IGNORE_INDEX
    return ids


def depth_array(array: np.ndarray, path: Path) -> np.ndarray:
    """A float depth array (H, W); DatasetError naming `path` otherwise."""
    if not np.issubdtype(array.dtype, np.floating):
        raise DatasetError(f'{path}: depth must be a float array, got {array.dtype}')
    return squeeze_channel(array, path, 'depth')


def check_shape(expected: tuple[int, int], array: np.ndarray, path: Path, what: str) -> None:
    """DatasetError unless `array` is `expected` (H, W) pixels, naming `path` and `what`."""
    if array.shape[:2] != expected:
        raise DatasetError(f'{path}: {what} is {array.shape[0]}x{array.shape[1]} but the image '
                           f'is {expected[0]}x{expected[1]}')


class MtanDataset(Dataset):
    """mtan-layout NYUv2 / Cityscapes / on-disk synthetic split (see the module docstring).

    root: folder holding the split folders. split: 'train', 'val' (synthetic also 'test').
    kind: 'nyuv2' | 'cityscapes' | 'synthetic'. num_classes: Cityscapes only, 7 (default) or
    19, selecting `label_7` or `label_19`. disparity: the Cityscapes conversion to metres.
    Counts and file names are checked at construction, shapes and dtypes per sample.
    """

    def __init__(self, root: str | Path, split: str, kind: str, num_classes: int | None = None,
                 disparity: CityscapesDisparity = CityscapesDisparity()) -> None:
        if kind not in KINDS:
            raise DatasetError(f'unknown mtan dataset kind {kind!r}; valid: {", ".join(KINDS)}')
        self.kind = kind
        self.num_classes = self._resolve_num_classes(kind, num_classes)
        self.disparity = disparity
        self.split_dir = Path(root) / split
        if not self.split_dir.is_dir():
            raise DatasetError(f'split folder {self.split_dir} does not exist')
        label_folder = f'label_{self.num_classes}' if kind == 'cityscapes' else 'label'
        self.folders = {'image': self.split_dir / 'image', 'label': self.split_dir / label_folder,
                        'depth': self.split_dir / 'depth'}
        if kind == 'synthetic':
            self.folders['K'] = self.split_dir / 'K'
        for folder in self.folders.values():
            if not folder.is_dir():
                raise DatasetError(f'folder {folder} does not exist')
        self.stems = numeric_stems(self.folders['image'], '.npy')
        if not self.stems:
            raise DatasetError(f'{self.folders["image"]} holds no .npy files')
        for name, folder in self.folders.items():
            if name != 'image':
                check_same_stems(self.stems, self.folders['image'],
                                 numeric_stems(folder, '.npy'), folder)

    @staticmethod
    def _resolve_num_classes(kind: str, num_classes: int | None) -> int:
        if kind == 'cityscapes':
            chosen = DEFAULT_NUM_CLASSES if num_classes is None else num_classes
            if chosen not in CITYSCAPES_CLASS_CHOICES:
                raise DatasetError(f'Cityscapes num_classes must be 7 or 19, got {num_classes}')
            return chosen
        if num_classes is not None and num_classes != NUM_CLASSES[kind]:
            raise DatasetError(f'{kind} has {NUM_CLASSES[kind]} classes, '
                               f'got num_classes={num_classes}')
        return NUM_CLASSES[kind]

    def __len__(self) -> int:
        return len(self.stems)

    def path(self, name: str, index: int) -> Path:
        return self.folders[name] / f'{self.stems[index]}.npy'

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < len(self.stems):
            raise IndexError(f'index {index} out of range for {len(self.stems)} samples')
        image_path = self.path('image', index)
        image = image_to_hwc(load_npy(image_path), image_path)
        size = image.shape[:2]
        label_path, depth_path = self.path('label', index), self.path('depth', index)
        raw_labels = squeeze_channel(load_npy(label_path), label_path, 'label')
        check_shape(size, raw_labels, label_path, 'label')
        labels = labels_to_ids(raw_labels, self.num_classes, label_path)
        depth = depth_array(load_npy(depth_path), depth_path)
        check_shape(size, depth, depth_path, 'depth')
        if self.kind == 'cityscapes':
            depth = self.disparity.to_metres(depth)
        K = None
        if self.kind == 'synthetic':
            K_path = self.path('K', index)
            K = load_npy(K_path)
            if K.shape != (3, 3) or not np.issubdtype(K.dtype, np.floating):
                raise DatasetError(f'{K_path}: K must be a (3, 3) float array, '
                                   f'got {K.shape} {K.dtype}')
        return make_sample(image, depth, labels, K)
