"""One entry point for every dataset: `build_dataset('nyuv2:/data/nyuv2', 'train', ...)`.

Spec forms (the `--data` argument of the commands):

    synthetic            synthetic street scenes rendered on the fly (7 classes)
    synthetic:DIR        synthetic scenes written by `jointdistill data synth --out DIR`
    nyuv2:DIR            mtan-format NYUv2 (13 classes)
    cityscapes:DIR       mtan-format Cityscapes, 7 classes (label_7)
    cityscapes19:DIR     mtan-format Cityscapes, 19 classes (label_19)
    folder:DIR           rgb/ + optional depth/, labels/, K (see data/folder.py); options
                         ?every=N&val=F select frames and hold back the last part
                         (data/selection.py)
    camvid:DIR           CamVid in the SegNet layout, mapped to the 7 categories (no depth)
    bag:PATH             a camera's rosbag2 recording (Image or CompressedImage, optional
                         camera_info and ground truth; options in data/bag.py)

Mixed data: several specs joined by commas, each with an optional `@WEIGHT`, for example
`synthetic:data/synth@0.7,camvid:/data/CamVid@0.3`. Training draws from each part in
proportion to its weight (default 1); samples keep only the annotations their source has
(all-invalid depth, all-void labels otherwise), so each supervised loss applies only where
its label exists. Every part must have the same classes.

Every sample carries intrinsics K: a source without them gets `default_intrinsics` (a
documented horizontal field of view) at its own size, before any resize or crop.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from torch.utils.data import Dataset

from jointdistill_core.classes import DEFAULT_NUM_CLASSES
from jointdistill_core.data.augment import (
    Compose,
    RandomHorizontalFlip,
    RandomScaleCrop,
    resize_sample,
)
from jointdistill_core.data.camvid import CamVidDataset
from jointdistill_core.data.folder import FolderDataset, read_class_names
from jointdistill_core.data.mixed import PART_SEPARATOR, MixedDataset, split_mixed_spec
from jointdistill_core.data.mtan import DatasetError, MtanDataset
from jointdistill_core.data.sample import Sample, with_intrinsics
from jointdistill_core.data.selection import FrameSelection, split_spec_options

SPEC_FORMS = ('synthetic', 'synthetic:DIR', 'nyuv2:DIR', 'cityscapes:DIR', 'cityscapes19:DIR',
              'folder:DIR', 'camvid:DIR', 'bag:PATH')
# Options a spec kind takes after '?' (data/selection.py).
SPEC_OPTIONS = {'folder': ('every', 'val'),
                'bag': ('image', 'camera_info', 'depth', 'labels', 'slop', 'every', 'gap', 'val')}
# On-the-fly synthetic defaults when the caller gives no size / frame count.
DEFAULT_SYNTHETIC_SIZE = (128, 256)
DEFAULT_SYNTHETIC_FRAMES = {'train': 2000, 'val': 200, 'test': 200}

__all__ = ['DatasetError', 'SPEC_FORMS', 'TransformedDataset', 'build_dataset', 'parse_spec']


class TransformedDataset(Dataset):
    """A dataset whose samples pass through `transform` (a sample dict -> sample dict)."""

    def __init__(self, dataset: Dataset, transform: Callable[[dict], dict]) -> None:
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Sample:
        return self.transform(self.dataset[index])


def parse_spec(spec: str) -> tuple[str, Path | None]:
    """'kind:DIR' -> (kind, Path(DIR)); 'synthetic' -> ('synthetic', None)."""
    kind, separator, directory = spec.partition(':')
    valid_kinds = {form.partition(':')[0] for form in SPEC_FORMS}
    if kind not in valid_kinds or (separator and not directory) or (
            not separator and kind != 'synthetic'):
        raise DatasetError(f'unknown dataset spec {spec!r}; valid forms: {", ".join(SPEC_FORMS)}')
    return kind, Path(directory) if directory else None


def _folder_num_classes(root: Path, num_classes: int | None) -> int | None:
    """The class count of a folder dataset; None for a folder without labels/ when none is
    given (depth-only data: nothing to count)."""
    names = read_class_names(root)
    if names is not None and num_classes is not None and len(names) != num_classes:
        raise DatasetError(f'{root / "classes.txt"} lists {len(names)} classes but '
                           f'num_classes={num_classes} was given')
    if names is not None:
        return len(names)
    if num_classes is None and (root / 'labels').is_dir():
        raise DatasetError(f'{root}: say how many classes the labels have, with num_classes '
                           f'or a classes.txt (one name per line)')
    return num_classes


def _base_dataset(spec: str, split: str, size: tuple[int, int] | None,
                  num_frames: int | None, num_classes: int | None) -> tuple[Dataset, int]:
    base, options = split_spec_options(spec)
    kind, directory = parse_spec(base)
    allowed = SPEC_OPTIONS.get(kind, ())
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise DatasetError(f'{spec!r}: {kind} takes no option {", ".join(unknown)} '
                           f'(its options: {", ".join(allowed) or "none"})')
    if kind == 'bag':
        from jointdistill_core.data.bag import BagDataset
        classes = num_classes or DEFAULT_NUM_CLASSES
        return BagDataset(directory, options, split, spec, classes), classes
    if kind == 'synthetic' and directory is None:
        from jointdistill_core.data.synthetic import SyntheticStreetDataset
        if split not in DEFAULT_SYNTHETIC_FRAMES:
            raise DatasetError(f'synthetic split must be one of '
                               f'{sorted(DEFAULT_SYNTHETIC_FRAMES)}, got {split!r}')
        height, width = size or DEFAULT_SYNTHETIC_SIZE
        frames = num_frames if num_frames is not None else DEFAULT_SYNTHETIC_FRAMES[split]
        return SyntheticStreetDataset(split, frames, height, width), DEFAULT_NUM_CLASSES
    if kind == 'folder':
        selection = FrameSelection.from_options(options, spec, default_val=0.0, has_time=False)
        classes = _folder_num_classes(directory, num_classes)
        dataset = FolderDataset(directory, classes)
        kept = selection.kept(list(range(len(dataset))))
        return torch.utils.data.Subset(dataset, selection.split(kept, split, spec)), classes
    if kind == 'camvid':
        if num_classes not in (None, CamVidDataset.num_classes):
            raise DatasetError(f'camvid is mapped to {CamVidDataset.num_classes} classes, got '
                               f'num_classes={num_classes}')
        return CamVidDataset(directory, split), CamVidDataset.num_classes
    if kind == 'cityscapes19':
        if num_classes not in (None, 19):
            raise DatasetError(f'cityscapes19 has 19 classes, got num_classes={num_classes}')
        kind, num_classes = 'cityscapes', 19
    dataset = MtanDataset(directory, split, kind, num_classes)
    return dataset, dataset.num_classes


def build_dataset(spec: str, split: str, size: tuple[int, int] | None = None,
                  num_frames: int | None = None, augment: bool = False,
                  num_classes: int | None = None, seed: int = 0,
                  canonical_depth: bool = False) -> tuple[Dataset, int]:
    """Build the dataset named by `spec` (see the module docstring) for `split`.

    size: (H, W) pixels every sample is resized to (on-the-fly synthetic renders at that
    size; default 128x256). num_frames: use the first N samples (on-the-fly synthetic: render
    N; defaults 2000 train, 200 val/test); single datasets only. augment: random scale-crop
    (1, 1.2, 1.5) then horizontal flip, drawn from torch's global RNG. num_classes:
    Cityscapes 7 or 19; folder datasets without classes.txt need it. seed: the order in which
    a mixed spec's small parts repeat. Returns (dataset, num_classes).
    """
    if PART_SEPARATOR in spec or '@' in spec.rpartition(':')[2]:
        return _build_mixed(spec, split, size, num_frames, augment, num_classes, seed,
                            canonical_depth)
    if num_frames is not None and num_frames < 1:
        raise DatasetError(f'num_frames must be >= 1, got {num_frames}')
    dataset, classes = _base_dataset(spec, split, size, num_frames, num_classes)
    if num_frames is not None and len(dataset) != num_frames:
        if num_frames > len(dataset):
            raise DatasetError(f'{spec} split {split!r} has {len(dataset)} samples, fewer than '
                               f'the {num_frames} asked for')
        dataset = torch.utils.data.Subset(dataset, range(num_frames))
    transforms: list[Callable[[dict], dict]] = [with_intrinsics]
    if size is not None:
        transforms.append(partial(resize_sample, size=(int(size[0]), int(size[1]))))
    if augment:
        transforms += [RandomScaleCrop(size, divide_depth=not canonical_depth),
                       RandomHorizontalFlip()]
    return TransformedDataset(dataset, Compose(transforms)), classes


def _build_mixed(spec: str, split: str, size: tuple[int, int] | None, num_frames: int | None,
                 augment: bool, num_classes: int | None, seed: int,
                 canonical_depth: bool) -> tuple[Dataset, int]:
    if num_frames is not None:
        raise DatasetError(f'num_frames applies to a single dataset, not to the mixed spec '
                           f'{spec!r}; weight its parts with @WEIGHT instead')
    if size is None:
        raise DatasetError(f'the mixed spec {spec!r} needs a common size (data.size / --size): '
                           f'its parts may differ in resolution')
    parts, weights, classes = [], [], None
    for part, weight in split_mixed_spec(spec):
        dataset, part_classes = build_dataset(part, split, size, None, augment, num_classes,
                                              canonical_depth=canonical_depth)
        if classes is not None and part_classes != classes:
            raise DatasetError(f'{part} has {part_classes} classes but the parts before it in '
                               f'{spec!r} have {classes}')
        classes = num_classes = part_classes
        parts.append(dataset)
        weights.append(weight)
    return MixedDataset(parts, weights, seed), classes
