"""Recordings as training data: `bag:PATH` specs on bags the project makes (`jointdistill bag
make`, Image and CompressedImage topics, mcap and sqlite3), frame selection by stamp, the
held-back end, ignored topics, mixed specs and errors."""
from __future__ import annotations

import numpy as np
import pytest

from jointdistill_core.bags.layout import frame_stamp_ns
from jointdistill_core.bags.make import default_synthetic_seed
from jointdistill_core.cli import main
from jointdistill_core.data.bag import BagDataset
from jointdistill_core.data.mtan import DatasetError
from jointdistill_core.data.registry import build_dataset
from jointdistill_core.data.synthetic import render_scene
from jointdistill_core.geometry import default_intrinsics

FRAMES, HEIGHT, WIDTH, RATE = 10, 48, 64, 15.0


@pytest.fixture(scope='module')
def bags(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp('bags')
    made = {}
    for name, extra in (('raw', ['--storage', 'sqlite3']), ('jpeg', ['--compressed', 'jpeg'])):
        assert main(['bag', 'make', '--out', str(root / name), '--frames', str(FRAMES),
                     '--size', f'{HEIGHT}x{WIDTH}', '--rate', str(RATE), *extra]) == 0
        made[name] = root / name
    return made


def stamps(path, options: dict, split: str) -> list[int]:
    """Frame indices (from the header stamps bag make writes) of a split."""
    frames = BagDataset(path, options, split, 'test-spec', 7).frames
    by_stamp = {frame_stamp_ns(i, RATE): i for i in range(FRAMES)}
    return [by_stamp[frame.stamp_ns] for frame in frames]


@pytest.mark.parametrize('name', ['raw', 'jpeg'])
def test_bag_frames_are_the_recorded_scenes_with_their_ground_truth(bags, name):
    train, classes = build_dataset(f'bag:{bags[name]}', 'train')
    val, _ = build_dataset(f'bag:{bags[name]}', 'val')
    assert (classes, len(train), len(val)) == (7, 8, 2)  # val defaults to the last 20 %
    scene = render_scene(default_synthetic_seed() + 8, HEIGHT, WIDTH)
    sample = val[0]
    image = sample['image'].permute(1, 2, 0).numpy() * 255
    error = np.abs(image - scene.image.astype(np.float64)).mean()
    assert error < 1e-4 if name == 'raw' else 0.5 < error < 8  # JPEG is lossy
    np.testing.assert_allclose(sample['K'].numpy(), scene.K, rtol=1e-6)
    valid = scene.depth > 0
    np.testing.assert_allclose(sample['depth'][0].numpy()[valid], scene.depth[valid], rtol=1e-6)
    assert np.array_equal(sample['labels'].numpy(), scene.labels.astype(np.int64))


def test_selection_by_index_and_by_stamp_and_the_held_back_end(bags):
    path = bags['jpeg']
    assert stamps(path, {'every': '3'}, 'train') == [0, 3, 6]
    assert stamps(path, {'every': '3'}, 'val') == [9]
    # 15 Hz: frames 66.7 ms apart; a 0.1 s gap keeps every second frame.
    assert stamps(path, {'gap': '0.1', 'val': '0.4'}, 'train') == [0, 2, 4]
    assert stamps(path, {'gap': '0.1', 'val': '0.4'}, 'val') == [6, 8]
    assert stamps(path, {'val': '0'}, 'val') == list(range(FRAMES))


def test_ignored_topics_leave_frames_unlabelled_with_the_default_camera(bags):
    spec = f'bag:{bags["raw"]}?depth=none&labels=none&camera_info=none'
    sample = build_dataset(spec, 'train')[0][0]
    assert not bool((sample['depth'] > 0).any()) and bool((sample['labels'] == 255).all())
    np.testing.assert_allclose(sample['K'].numpy(), default_intrinsics(HEIGHT, WIDTH), rtol=1e-6)


def test_a_bag_inside_a_mixed_spec(bags):
    spec = f'bag:{bags["jpeg"]}?every=2@1,bag:{bags["raw"]}?val=0.5@1'
    dataset, classes = build_dataset(spec, 'val', size=(32, 64))
    assert classes == 7 and dataset[0]['image'].shape == (3, 32, 64)
    # parts: the jpeg bag's last kept frame (8), the raw bag's last 5 frames
    assert len({float(dataset[i]['image'].sum()) for i in range(len(dataset))}) == 6


def test_bag_spec_errors_name_spec_option_and_topic(bags, tmp_path):
    path = bags['raw']
    with pytest.raises(DatasetError, match='has no image topic /cam or /cam/compressed'):
        build_dataset(f'bag:{path}?image=/cam', 'train')
    with pytest.raises(DatasetError, match='option image cannot be none'):
        build_dataset(f'bag:{path}?image=none', 'train')
    with pytest.raises(DatasetError, match='bag takes no option fps'):
        build_dataset(f'bag:{path}?fps=3', 'train')
    with pytest.raises(DatasetError, match='option slop must be >= 0 seconds'):
        build_dataset(f'bag:{path}?slop=-1', 'train')
    with pytest.raises(DatasetError, match=f'bag {tmp_path / "none"} does not exist'):
        build_dataset(f'bag:{tmp_path / "none"}', 'train')
    with pytest.raises(DatasetError, match=r'stamp 1700000000000000000 ns: label value [3-6] '
                                           r'is neither a class id in \[0, 3\)'):
        build_dataset(f'bag:{path}', 'train', num_classes=3)[0][0]
