"""Frame selection and the train / val split of recordings (bags) and image folders.

Options follow a dataset spec after '?', joined by '&' (docs/datasets.md):

    folder:runs/frames?every=5&val=0.2
    bag:rec.mcap?image=/cam/image_raw/compressed&gap=0.5&val=0.2

    every=N    keep every N-th frame (the 1st, the N+1-th, ...), default 1
    gap=S      keep a frame only when at least S seconds passed since the last kept one
               (bags: header stamps; folders have no time), default 0
    val=F      the last fraction F of the kept frames is the held-back part (splits 'val'
               and 'test'), the rest is 'train'; default 0.2 for bags; for folders 0, which
               keeps the old meaning: every split is the whole folder

Why the last part and not every k-th frame: consecutive frames of a recording are nearly
the same picture, so frames interleaved with the training frames would be near-copies of
them and the held-back score would flatter the student. A contiguous block at the end is
the least correlated part a single recording has (the robot has moved on), and the split
never changes when frames are appended to the selection's start. Frames are ordered by
time (bags) or by sorted file name (folders, so name them by time).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from jointdistill_core.data.mtan import DatasetError

OPTIONS_SEPARATOR = '?'
OPTION_SEPARATOR = '&'
HELD_BACK_SPLITS = ('val', 'test')
SPLITS = ('train', *HELD_BACK_SPLITS)


def split_spec_options(spec: str) -> tuple[str, dict[str, str]]:
    """'kind:DIR?a=1&b=2' -> ('kind:DIR', {'a': '1', 'b': '2'}); no '?' -> (spec, {})."""
    base, separator, text = spec.partition(OPTIONS_SEPARATOR)
    if not separator:
        return spec, {}
    options: dict[str, str] = {}
    for item in text.split(OPTION_SEPARATOR):
        key, equals, value = item.partition('=')
        if not equals or not key or not value:
            raise DatasetError(f'{spec!r}: option {item!r} is not KEY=VALUE')
        if key in options:
            raise DatasetError(f'{spec!r}: option {key!r} is given twice')
        options[key] = value
    return base, options


@dataclass(frozen=True)
class FrameSelection:
    """Which frames of an ordered recording are used, and which of them are held back
    (module docstring). every: >= 1; min_gap_s: seconds >= 0; val: fraction in [0, 1)."""

    every: int = 1
    min_gap_s: float = 0.0
    val: float = 0.0

    @classmethod
    def from_options(cls, options: dict[str, str], spec: str, default_val: float,
                     has_time: bool) -> FrameSelection:
        """The selection given by `options` ('every', 'gap', 'val'; others are left to the
        caller); errors name the spec and the option."""
        def number(key: str, kind, default):
            if key not in options:
                return default
            try:
                return kind(options[key])
            except ValueError:
                raise DatasetError(f'{spec!r}: option {key}={options[key]!r} is not a '
                                   f'{"whole " if kind is int else ""}number') from None
        selection = cls(number('every', int, 1), number('gap', float, 0.0),
                        number('val', float, default_val))
        if selection.every < 1:
            raise DatasetError(f'{spec!r}: option every must be >= 1, got {selection.every}')
        if not (math.isfinite(selection.min_gap_s) and selection.min_gap_s >= 0):
            raise DatasetError(f'{spec!r}: option gap must be >= 0 seconds, got '
                               f'{options.get("gap")}')
        if 'gap' in options and not has_time:
            raise DatasetError(f'{spec!r}: option gap needs time stamps; an image folder has '
                               'none (use every=N)')
        if not 0 <= selection.val < 1:
            raise DatasetError(f'{spec!r}: option val must be a fraction in [0, 1), got '
                               f'{options.get("val")}')
        return selection

    def kept(self, stamps_ns: list[int]) -> list[int]:
        """Indices of the frames kept by `every` and `gap` (stamps in nanoseconds, ascending;
        any increasing numbers when min_gap_s is 0)."""
        kept: list[int] = []
        last = None
        for index in range(0, len(stamps_ns), self.every):
            if last is not None and stamps_ns[index] - last < self.min_gap_s * 1e9:
                continue
            kept.append(index)
            last = stamps_ns[index]
        return kept

    def split(self, indices: list[int], split: str, spec: str) -> list[int]:
        """The part of the kept `indices` that is `split`: 'train' the first ones, 'val' and
        'test' the last fraction `val`; with val 0 every split is all of them."""
        if self.val == 0:
            return indices
        if split not in SPLITS:
            raise DatasetError(f'{spec!r}: split must be one of {", ".join(SPLITS)}, got '
                               f'{split!r}')
        held_back = max(1, round(self.val * len(indices)))
        if held_back >= len(indices):
            raise DatasetError(f'{spec!r}: {len(indices)} frame(s) selected, too few to hold '
                               f'back val={self.val} and keep a training frame')
        boundary = len(indices) - held_back
        return indices[:boundary] if split == 'train' else indices[boundary:]
