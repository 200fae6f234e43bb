"""A plain folder of images, for users' own data.

    root/rgb/<stem>.png | .jpg | .jpeg     colour images (8-bit)
    root/depth/<stem>.png                  optional: 16-bit depth in millimetres, 0 = invalid
    root/depth/<stem>.npy                  optional: float depth in metres, 0 = invalid
    root/labels/<stem>.png                 optional: 8-bit class ids, 255 = void
    root/K.txt                             optional: one 3x3 intrinsics matrix for every image
    root/K/<stem>.npy                      optional: a 3x3 matrix per image
    root/classes.txt                       optional: one class name per line

Files are matched by stem. A missing `depth/` or `labels/` folder means all-invalid depth or
all-void labels; a present one must hold a file for every image.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from torch.utils.data import Dataset

from jointdistill_core.data.mtan import (
    DatasetError,
    check_same_stems,
    check_shape,
    depth_array,
    load_npy,
)
from jointdistill_core.data.sample import IGNORE_INDEX, Sample, make_sample

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg')
DEPTH_SUFFIXES = ('.png', '.npy')
MILLIMETRES_PER_METRE = 1000.0


def files_by_stem(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """{stem: path} of the files in `folder` with one of `suffixes`; one file per stem."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in suffixes:
            if path.stem in found:
                raise DatasetError(f'{folder}: two files share the stem {path.stem!r} '
                                   f'({found[path.stem].name}, {path.name})')
            found[path.stem] = path
    return found


def read_png(path: Path) -> np.ndarray:
    """The pixels of an image file as stored (any depth); DatasetError if unreadable."""
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise DatasetError(f'{path}: unreadable image file')
    return array


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB from an 8-bit colour or grey image file."""
    array = read_png(path)
    if array.dtype != np.uint8:
        raise DatasetError(f'{path}: colour images must be 8-bit, got {array.dtype}')
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2)
    if array.shape[2] == 4:
        return cv2.cvtColor(array, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(array, cv2.COLOR_BGR2RGB)


def read_depth(path: Path) -> np.ndarray:
    """(H, W) float32 metres: 16-bit PNG in millimetres or .npy in metres; 0 = invalid."""
    if path.suffix.lower() == '.npy':
        return depth_array(load_npy(path), path).astype(np.float32)
    array = read_png(path)
    if array.dtype != np.uint16 or array.ndim != 2:
        raise DatasetError(f'{path}: depth PNG must be single-channel 16-bit millimetres, got '
                           f'{array.dtype} with shape {array.shape}')
    return array.astype(np.float32) / MILLIMETRES_PER_METRE


def read_labels(path: Path, num_classes: int | None) -> np.ndarray:
    """(H, W) int64 class ids from a single-channel 8-bit PNG, 255 = void."""
    array = read_png(path)
    if array.dtype != np.uint8 or array.ndim != 2:
        raise DatasetError(f'{path}: label PNG must be single-channel 8-bit class ids, got '
                           f'{array.dtype} with shape {array.shape}')
    labels = array.astype(np.int64)
    if num_classes is not None:
        bad = (labels >= num_classes) & (labels != IGNORE_INDEX)
        if bad.any():
            raise DatasetError(f'{path}: label value {int(labels[bad][0])} is neither a class '
                               f'id in [0, {num_classes}) nor void 255')
    return labels


def read_intrinsics(path: Path) -> np.ndarray:
    """A (3, 3) float64 matrix from K.txt (whitespace separated, 9 numbers) or a .npy file."""
    if path.suffix == '.npy':
        matrix = load_npy(path)
    else:
        try:
            matrix = np.loadtxt(path, dtype=np.float64, ndmin=2)
        except ValueError as error:
            raise DatasetError(f'{path}: not a 3x3 matrix of numbers ({error})') from None
    if matrix.size != 9 or not np.issubdtype(matrix.dtype, np.number):
        raise DatasetError(f'{path}: intrinsics must be 9 numbers (3x3), got shape {matrix.shape}')
    return matrix.reshape(3, 3).astype(np.float64)


def read_class_names(root: Path) -> list[str] | None:
    """Class names from root/classes.txt (one per non-empty line), or None when absent."""
    path = root / 'classes.txt'
    if not path.is_file():
        return None
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise DatasetError(f'{path}: holds no class names')
    return names


class FolderDataset(Dataset):
    """Images with optional depth, labels and intrinsics in a folder (see module docstring).

    num_classes, when given, makes label values >= num_classes (other than 255) an error.
    """

    def __init__(self, root: str | Path, num_classes: int | None = None) -> None:
        self.root = Path(root)
        self.num_classes = num_classes
        rgb_dir = self.root / 'rgb'
        if not rgb_dir.is_dir():
            raise DatasetError(f'folder {rgb_dir} does not exist')
        self.images = files_by_stem(rgb_dir, IMAGE_SUFFIXES)
        if not self.images:
            raise DatasetError(f'{rgb_dir} holds no .png/.jpg images')
        self.stems = sorted(self.images)
        self.depths = self._optional_folder('depth', DEPTH_SUFFIXES)
        self.labels = self._optional_folder('labels', ('.png',))
        self.per_image_K = self._optional_folder('K', ('.npy',))
        shared_K = self.root / 'K.txt'
        self.shared_K = read_intrinsics(shared_K) if shared_K.is_file() else None
        if self.shared_K is not None and self.per_image_K is not None:
            raise DatasetError(f'{self.root}: give intrinsics either as K.txt or as K/*.npy, '
                               'not both')

    def _optional_folder(self, name: str, suffixes: tuple[str, ...]) -> dict[str, Path] | None:
        folder = self.root / name
        if not folder.is_dir():
            return None
        files = files_by_stem(folder, suffixes)
        check_same_stems(self.stems, self.root / 'rgb', sorted(files), folder)
        return files

    def __len__(self) -> int:
        return len(self.stems)

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < len(self.stems):
            raise IndexError(f'index {index} out of range for {len(self.stems)} samples')
        stem = self.stems[index]
        image = read_rgb(self.images[stem])
        size = image.shape[:2]
        depth = labels = None
        if self.depths is not None:
            depth = read_depth(self.depths[stem])
            check_shape(size, depth, self.depths[stem], 'depth')
        if self.labels is not None:
            labels = read_labels(self.labels[stem], self.num_classes)
            check_shape(size, labels, self.labels[stem], 'labels')
        K = self.shared_K
        if self.per_image_K is not None:
            K = read_intrinsics(self.per_image_K[stem])
        return make_sample(image, depth, labels, K)
