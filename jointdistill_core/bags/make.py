"""Make camera bags: synthetic scenes or any supported dataset, in one topic layout."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from jointdistill_core.bags.layout import DEFAULT_START_NS, CameraTopics, frame_stamp_ns
from jointdistill_core.bags.writer import BagWriter, check_output_dir
from jointdistill_core.data.sample import Sample


def default_synthetic_seed() -> int:
    """First seed of the synthetic test split: bags show scenes the student never trained on."""
    from jointdistill_core.data.synthetic import SPLIT_SEED_START
    return int(SPLIT_SEED_START['test'])


def make_synthetic_bag(out: str | Path, frames: int, height: int, width: int, rate_hz: float,
                       storage: str = 'mcap', seed: int | None = None, force: bool = False,
                       topics: CameraTopics = CameraTopics(), progress: bool = True,
                       compression: str | None = None) -> Path:
    """Render `frames` synthetic scenes (seeds seed, seed+1, ...) at height x width pixels into a
    bag with header stamps DEFAULT_START_NS + i / rate_hz seconds. Returns the bag path.
    compression: None (raw rgb8 Image) or 'jpeg' / 'png' (CompressedImage, BagWriter)."""
    from jointdistill_core.data.synthetic import render_scene
    if frames < 1:
        raise ValueError(f'frames must be >= 1, got {frames}')
    frame_stamp_ns(0, rate_hz)  # validates the rate before any work
    seed = default_synthetic_seed() if seed is None else seed
    out = Path(out)
    with BagWriter(out, storage, force) as writer:
        for index in tqdm(range(frames), desc=f'bag {out.name}', unit='frame',
                          disable=not progress):
            scene = render_scene(seed + index, height, width)
            writer.write_frame(frame_stamp_ns(index, rate_hz), scene.image, scene.depth,
                               scene.labels, scene.K, topics, compression)
    return out


def sample_to_arrays(sample: Sample) -> tuple[np.ndarray, np.ndarray | None,
                                                      np.ndarray | None, np.ndarray | None]:
    """Dataset sample (see data/sample.py) -> image (H, W, 3) uint8, depth metres (0 invalid),
    labels uint8 (255 void), K (3, 3) or None. All-invalid depth or all-void labels -> None."""
    image = np.rint(sample['image'].numpy().transpose(1, 2, 0) * 255.0)
    image = np.clip(image, 0, 255).astype(np.uint8)
    depth = sample['depth'].numpy()[0]
    labels = sample['labels'].numpy()
    K = sample['K'].numpy() if 'K' in sample else None
    return (image, depth if (depth > 0).any() else None,
            labels.astype(np.uint8) if (labels != 255).any() else None, K)


def dataset_to_bag(spec: str, split: str, out: str | Path, rate_hz: float, storage: str = 'mcap',
                   size: tuple[int, int] | None = None, num_frames: int | None = None,
                   force: bool = False, topics: CameraTopics = CameraTopics(),
                   progress: bool = True) -> Path:
    """Write a dataset split (registry spec, e.g. 'synthetic' or 'nyuv2:/data/nyu') as a bag."""
    from jointdistill_core.data.registry import build_dataset
    frame_stamp_ns(0, rate_hz)
    out = Path(out)
    check_output_dir(out, force)
    dataset, _ = build_dataset(spec, split, size=size, num_frames=num_frames)
    count = len(dataset) if num_frames is None else min(num_frames, len(dataset))
    with BagWriter(out, storage, force) as writer:
        for index in tqdm(range(count), desc=f'bag {out.name}', unit='frame',
                          disable=not progress):
            image, depth, labels, K = sample_to_arrays(dataset[index])
            writer.write_frame(frame_stamp_ns(index, rate_hz, DEFAULT_START_NS), image, depth,
                               labels, K, topics)
    return out
