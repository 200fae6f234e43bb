"""Several datasets drawn in fixed proportions, for training on mixed annotations.

A `MixedDataset` is a deterministic list of slots: one "epoch" of it covers every source at
least once at its weight, so no part of a large source is left out and a small one repeats.
With weights w_k (normalised to sum 1) and lengths n_k the epoch has
L = max_k ceil(n_k / w_k) slots, round(w_k L) of them for source k; the i-th slot of source
k reads sample perm_{k,c}[i mod n_k], with a fresh seeded permutation for each cycle c over
the source. The trainer's sampler shuffles the slots, so batches mix the sources.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from torch.utils.data import Dataset

from jointdistill_core.data.mtan import DatasetError
from jointdistill_core.data.sample import Sample

WEIGHT_SEPARATOR = '@'
PART_SEPARATOR = ','


def split_mixed_spec(spec: str) -> list[tuple[str, float]]:
    """'a@0.7,b@0.3' -> [('a', 0.7), ('b', 0.3)]; a part without '@' has weight 1."""
    parts = []
    for text in spec.split(PART_SEPARATOR):
        part, separator, weight_text = text.strip().rpartition(WEIGHT_SEPARATOR)
        if not separator:
            part, weight = weight_text, 1.0
        else:
            try:
                weight = float(weight_text)
            except ValueError:
                raise DatasetError(f'{text!r}: the weight after {WEIGHT_SEPARATOR!r} must be a '
                                   f'number, got {weight_text!r}') from None
        if not part:
            raise DatasetError(f'empty dataset in the mixed spec {spec!r}')
        if not (math.isfinite(weight) and weight > 0):
            raise DatasetError(f'{text!r}: the weight must be a positive number, got {weight}')
        parts.append((part, weight))
    return parts


def mixing_counts(lengths: Sequence[int], weights: Sequence[float]) -> list[int]:
    """Slots per source in one epoch (see the module docstring); every count >= its length."""
    total_weight = float(sum(weights))
    fractions = [weight / total_weight for weight in weights]
    epoch = max(math.ceil(length / fraction - 1e-9) for length, fraction in zip(lengths, fractions))
    counts = [max(length, round(fraction * epoch)) for length, fraction in zip(lengths, fractions)]
    return counts


class MixedDataset(Dataset):
    """Sources drawn in proportion to `weights` (module docstring). Samples pass unchanged."""

    def __init__(self, datasets: Sequence[Dataset], weights: Sequence[float],
                 seed: int = 0) -> None:
        if len(datasets) != len(weights) or not datasets:
            raise ValueError('MixedDataset needs one weight per dataset and at least one dataset')
        lengths = [len(dataset) for dataset in datasets]
        if min(lengths) < 1:
            raise DatasetError('a part of the mixed dataset is empty')
        self.datasets = list(datasets)
        self.weights = [float(weight) for weight in weights]
        self.counts = mixing_counts(lengths, self.weights)
        self.offsets = np.cumsum([0] + self.counts)
        self.seed = seed
        self._permutations: dict[tuple[int, int], np.ndarray] = {}

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def source(self, index: int) -> tuple[int, int]:
        """(source number, index within that source) of slot `index`."""
        if not 0 <= index < len(self):
            raise IndexError(f'index {index} out of range for {len(self)} slots')
        source = int(np.searchsorted(self.offsets, index, side='right')) - 1
        slot = index - int(self.offsets[source])
        length = len(self.datasets[source])
        cycle, within = divmod(slot, length)
        key = (source, cycle)
        if key not in self._permutations:
            generator = np.random.default_rng([self.seed, source, cycle])
            self._permutations[key] = generator.permutation(length)
        return source, int(self._permutations[key][within])

    def __getitem__(self, index: int) -> Sample:
        source, local = self.source(index)
        return self.datasets[source][local]
