"""Data order as a pure function of (seed, step), so resume and DDP reproduce it exactly.

The global sample stream is a concatenation of epochs, each a seeded permutation of the
dataset. Step s consumes stream positions [s * B, (s + 1) * B) for global batch B; under
DDP, process r of P takes the contiguous slice r * B/P ... (r + 1) * B/P - 1 of that batch,
so P processes together see exactly the batch one process would (the role of
DistributedSampler, but addressable by step, which resume needs). Each sample also gets its
own seed, set around the dataset's `__getitem__`, so random augmentation does not depend on
worker count, worker scheduling or where a run was resumed.
"""
from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

_EPOCH_SEED_STRIDE = 1_000_003


def epoch_permutation(num_items: int, seed: int, epoch: int) -> torch.Tensor:
    """The sample order of `epoch`, the same for a seed on every process."""
    generator = torch.Generator().manual_seed(seed * _EPOCH_SEED_STRIDE + epoch)
    return torch.randperm(num_items, generator=generator)


def sample_seed(seed: int, position: int) -> int:
    """A 63-bit seed for the sample at global stream `position`."""
    generator = np.random.default_rng([seed, position])
    return int(generator.integers(0, 2 ** 63 - 1))


class StepBatchSampler(Sampler):
    """Yields, for steps `start_step` .. `total_steps - 1`, this process's list of
    (dataset index, sample seed) pairs."""

    def __init__(self, num_items: int, global_batch: int, seed: int, start_step: int,
                 total_steps: int, rank: int = 0, world_size: int = 1):
        if num_items < 1:
            raise ValueError('the training split is empty')
        if global_batch % world_size:
            raise ValueError(f'data.batch_size {global_batch} is not divisible by the '
                             f'{world_size} processes')
        self.num_items, self.global_batch, self.seed = num_items, global_batch, seed
        self.start_step, self.total_steps = start_step, total_steps
        self.local_batch = global_batch // world_size
        self.offset = rank * self.local_batch
        self._permutations: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return max(0, self.total_steps - self.start_step)

    def batch(self, step: int) -> list[tuple[int, int]]:
        first = step * self.global_batch + self.offset
        return [(self._index(position), sample_seed(self.seed, position))
                for position in range(first, first + self.local_batch)]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start_step, self.total_steps):
            yield self.batch(step)

    def _index(self, position: int) -> int:
        epoch, within = divmod(position, self.num_items)
        if epoch not in self._permutations:
            self._permutations = {epoch: epoch_permutation(self.num_items, self.seed, epoch)}
        return int(self._permutations[epoch][within])


class SeededDataset(Dataset):
    """Wraps a dataset so that item (index, seed) is loaded with torch, numpy and Python's
    RNGs seeded by `seed`; the caller's RNG states are restored afterwards.

    Items are also computed with one torch thread, as in DataLoader worker processes:
    resampling (augmentation, resizing) rounds differently with other thread counts, and
    the same samples must come out with any `data.workers`.
    """

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int]):
        index, seed = item
        numpy_state, python_state = np.random.get_state(), random.getstate()
        threads = torch.get_num_threads()
        try:
            torch.set_num_threads(1)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                np.random.seed(seed % 2 ** 32)
                random.seed(seed)
                return self.dataset[index]
        finally:
            torch.set_num_threads(threads)
            np.random.set_state(numpy_state)
            random.setstate(python_state)
