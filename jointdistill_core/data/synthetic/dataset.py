"""`SyntheticStreetDataset`: rendered frames as samples; splits are seed ranges."""
from __future__ import annotations

from torch.utils.data import Dataset

from jointdistill_core.data.sample import Sample, make_sample
from jointdistill_core.data.synthetic.camera import DEFAULT_FOV_RANGE_DEG, check_fov_range
from jointdistill_core.data.synthetic.layouts import DEFAULT_MIX, SceneMix
from jointdistill_core.data.synthetic.render import render_scene

SPLIT_SEED_START = {'train': 0, 'val': 1_000_000, 'test': 2_000_000}


class SyntheticStreetDataset(Dataset):
    """Scenes rendered on the fly; frame i of a split uses seed SPLIT_SEED_START[split] + i.

    Each item is a sample (see `jointdistill_core.data.sample`): image (3, H, W) in [0, 1],
    depth (1, H, W) metres (0 = sky), labels (H, W) int64, K (3, 3). mix and fov_range_deg
    are passed to `render_scene` (defaults: DEFAULT_MIX, 40-110 degrees).
    """

    def __init__(self, split: str, num_frames: int, height: int, width: int,
                 mix: SceneMix | None = None,
                 fov_range_deg: tuple[float, float] = DEFAULT_FOV_RANGE_DEG):
        if split not in SPLIT_SEED_START:
            raise ValueError(f'split must be one of {sorted(SPLIT_SEED_START)}, got {split!r}')
        if num_frames < 0:
            raise ValueError(f'num_frames must be >= 0, got {num_frames}')
        self.split, self.num_frames = split, num_frames
        self.height, self.width = height, width
        self.mix = mix or DEFAULT_MIX
        self.fov_range_deg = check_fov_range(fov_range_deg)

    def __len__(self) -> int:
        return self.num_frames

    def seed(self, index: int) -> int:
        return SPLIT_SEED_START[self.split] + index

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < self.num_frames:
            raise IndexError(f'frame {index} out of range for {self.num_frames} frames')
        frame = render_scene(self.seed(index), self.height, self.width, self.mix,
                             self.fov_range_deg)
        return make_sample(frame.image, frame.depth, frame.labels, frame.K)
