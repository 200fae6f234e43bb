"""Dataset loaders, augmentation and the spec registry on fixture folders built here."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from jointdistill_core.data.augment import RandomHorizontalFlip, RandomScaleCrop, resize_sample
from jointdistill_core.data.folder import FolderDataset
from jointdistill_core.data.mtan import CityscapesDisparity, DatasetError, MtanDataset
from jointdistill_core.data.registry import build_dataset, parse_spec
from jointdistill_core.data.sample import make_sample

H, W = 6, 8


def ramp_image(channels_first: bool = False) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1], distinct per pixel and channel."""
    values = np.arange(H * W * 3, dtype=np.float32).reshape(H, W, 3) / (H * W * 3)
    return values.transpose(2, 0, 1).copy() if channels_first else values


def write_split(root: Path, split: str, count: int, label_folder: str = 'label',
                depth: np.ndarray | None = None, with_K: bool = False,
                channels_first: bool = False) -> Path:
    """An mtan split: image (H,W,3) or (3,H,W), label (H,W) float -1 void, depth (H,W,1)."""
    split_dir = root / split
    for name in ('image', label_folder, 'depth') + (('K',) if with_K else ()):
        (split_dir / name).mkdir(parents=True)
    labels = np.zeros((H, W), np.float32)
    labels[0, :] = -1
    labels[1, :] = 2
    for i in range(count):
        np.save(split_dir / 'image' / f'{i}.npy', ramp_image(channels_first))
        np.save(split_dir / label_folder / f'{i}.npy', labels)
        stored = depth if depth is not None else np.full((H, W, 1), 2.0 + i, np.float32)
        np.save(split_dir / 'depth' / f'{i}.npy', stored)
        if with_K:
            np.save(split_dir / 'K' / f'{i}.npy',
                    np.array([[5.0, 0, 3.5], [0, 5.0, 2.5], [0, 0, 1]]))
    return split_dir


# ----------------------------------------------------------------------------- mtan formats

def test_nyuv2_reads_image_depth_and_maps_void_to_255(tmp_path):
    write_split(tmp_path, 'train', 3)
    dataset = MtanDataset(tmp_path, 'train', 'nyuv2')
    assert len(dataset) == 3 and dataset.num_classes == 13
    sample = dataset[1]
    assert sample['image'].shape == (3, H, W) and sample['image'].dtype == torch.float32
    np.testing.assert_array_equal(sample['image'].numpy(), ramp_image(channels_first=True))
    assert sample['depth'].shape == (1, H, W)
    assert torch.all(sample['depth'] == 3.0)      # file 1 holds 2.0 + 1 metres
    assert sample['labels'].dtype == torch.int64
    assert torch.all(sample['labels'][0] == 255)  # -1 -> 255
    assert torch.all(sample['labels'][1] == 2)
    assert 'K' not in sample


def test_channels_first_images_are_accepted(tmp_path):
    write_split(tmp_path, 'val', 1, channels_first=True)
    sample = MtanDataset(tmp_path, 'val', 'nyuv2')[0]
    np.testing.assert_array_equal(sample['image'].numpy(), ramp_image(channels_first=True))


def test_samples_are_read_in_numeric_order(tmp_path):
    write_split(tmp_path, 'train', 11)
    dataset = MtanDataset(tmp_path, 'train', 'nyuv2')
    # 10.npy must come after 9.npy (depth 2 + i), not after 1.npy.
    assert float(dataset[2]['depth'][0, 0, 0]) == 4.0
    assert float(dataset[10]['depth'][0, 0, 0]) == 12.0


def test_cityscapes_disparity_is_converted_to_metres(tmp_path):
    stored = np.zeros((H, W, 1), np.float32)
    # Raw Cityscapes PNG value 2049 means (2049 - 1) / 256 = 8 px of disparity; mtan stores
    # it as 2049 / 65535. Depth = baseline * focal / disparity.
    stored[2:, :, 0] = 2049 / 65535
    stored[0, :, 0] = -1.0          # invalid (auto-lambda convention)
    stored[1, :, 0] = 1 / 65535     # raw 1: zero disparity, invalid
    write_split(tmp_path, 'train', 1, label_folder='label_7', depth=stored)
    sample = MtanDataset(tmp_path, 'train', 'cityscapes')[0]
    expected = 0.209313 * 2262.52 / 8.0   # about 59.197 m
    np.testing.assert_allclose(sample['depth'][0, 2:].numpy(), expected, rtol=1e-5)
    assert torch.all(sample['depth'][0, :2] == 0)


def test_cityscapes_conversion_constants_are_parameters():
    conversion = CityscapesDisparity(baseline_m=0.5, focal_px=100.0, stored_to_pixels=10.0,
                                     offset_px=0.0)
    # disparity = 0.4 * 10 = 4 px -> 0.5 * 100 / 4 = 12.5 m
    np.testing.assert_allclose(conversion.to_metres(np.array([[0.4, 0.0]])), [[12.5, 0.0]])


def test_cityscapes_label_folder_follows_num_classes(tmp_path):
    split_dir = write_split(tmp_path, 'train', 2, label_folder='label_7')
    (split_dir / 'label_19').mkdir()
    for i in range(2):
        np.save(split_dir / 'label_19' / f'{i}.npy', np.full((H, W), 18.0, np.float32))
    assert MtanDataset(tmp_path, 'train', 'cityscapes').num_classes == 7
    sample = MtanDataset(tmp_path, 'train', 'cityscapes', num_classes=19)[0]
    assert torch.all(sample['labels'] == 18)
    with pytest.raises(DatasetError, match='7 or 19'):
        MtanDataset(tmp_path, 'train', 'cityscapes', num_classes=13)


def test_synthetic_on_disk_reads_intrinsics(tmp_path):
    write_split(tmp_path, 'test', 2, with_K=True)
    sample = MtanDataset(tmp_path, 'test', 'synthetic')[1]
    assert sample['K'].dtype == torch.float32
    np.testing.assert_allclose(sample['K'].numpy(), [[5, 0, 3.5], [0, 5, 2.5], [0, 0, 1]])
    assert MtanDataset(tmp_path, 'test', 'synthetic').num_classes == 7


# ----------------------------------------------------------------------------- mtan errors

def test_missing_split_names_the_folder(tmp_path):
    write_split(tmp_path, 'train', 1)
    with pytest.raises(DatasetError, match=str(tmp_path / 'val')):
        MtanDataset(tmp_path, 'val', 'nyuv2')


def test_missing_modality_folder_names_it(tmp_path):
    write_split(tmp_path, 'train', 1)  # has 'label', not 'label_7'
    with pytest.raises(DatasetError, match='label_7'):
        MtanDataset(tmp_path, 'train', 'cityscapes')


def test_mismatched_counts_name_the_folder(tmp_path):
    split_dir = write_split(tmp_path, 'train', 3)
    (split_dir / 'depth' / '2.npy').unlink()
    with pytest.raises(DatasetError, match=rf'{split_dir / "depth"} has 2 files'):
        MtanDataset(tmp_path, 'train', 'nyuv2')


def test_mismatched_names_name_the_folder(tmp_path):
    split_dir = write_split(tmp_path, 'train', 3)
    (split_dir / 'label' / '2.npy').rename(split_dir / 'label' / '7.npy')
    label_dir = split_dir / 'label'
    with pytest.raises(DatasetError, match=rf"{label_dir} does not match.*\['2'\].*\['7'\]"):
        MtanDataset(tmp_path, 'train', 'nyuv2')


def test_shape_mismatch_names_the_file(tmp_path):
    split_dir = write_split(tmp_path, 'train', 2)
    np.save(split_dir / 'depth' / '1.npy', np.ones((H, W + 1), np.float32))
    dataset = MtanDataset(tmp_path, 'train', 'nyuv2')
    dataset[0]
    with pytest.raises(DatasetError, match=rf'{split_dir / "depth" / "1.npy"}: depth is 6x9'):
        dataset[1]


@pytest.mark.parametrize('folder, array, message', [
    ('image', np.ones((H, W, 3), np.int32), 'image dtype'),
    ('image', np.full((H, W, 3), 200.0, np.float32), r'\[0, 1\]'),
    ('image', np.ones((H, W), np.float32), r'\(H, W, 3\)'),
    ('depth', np.ones((H, W), np.int16), 'depth must be a float'),
    ('label', np.ones((H, W), np.bool_), 'labels must be'),
    ('label', np.full((H, W), 1.5, np.float32), 'integral'),
    ('label', np.full((H, W), 13.0, np.float32), 'label value 13'),
])
def test_bad_arrays_name_the_file(tmp_path, folder, array, message):
    split_dir = write_split(tmp_path, 'train', 1)
    np.save(split_dir / folder / '0.npy', array)
    with pytest.raises(DatasetError, match=message) as error:
        MtanDataset(tmp_path, 'train', 'nyuv2')[0]
    assert str(split_dir / folder / '0.npy') in str(error.value)


def test_unreadable_npy_names_the_file(tmp_path):
    split_dir = write_split(tmp_path, 'train', 1)
    (split_dir / 'label' / '0.npy').write_bytes(b'not a numpy file')
    with pytest.raises(DatasetError, match=rf'{split_dir / "label" / "0.npy"}: unreadable'):
        MtanDataset(tmp_path, 'train', 'nyuv2')[0]


def test_pickled_npy_is_refused(tmp_path):
    split_dir = write_split(tmp_path, 'train', 1)
    np.save(split_dir / 'depth' / '0.npy', np.array([{'a': 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DatasetError, match='unreadable'):
        MtanDataset(tmp_path, 'train', 'nyuv2')[0]


# ----------------------------------------------------------------------------- folder format

def write_folder(root: Path, stems=('a', 'b'), depth_format: str | None = 'png',
                 with_labels: bool = True) -> Path:
    (root / 'rgb').mkdir(parents=True)
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0] = 200   # red in RGB order
    for stem in stems:
        cv2.imwrite(str(root / 'rgb' / f'{stem}.png'), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if depth_format:
        (root / 'depth').mkdir()
        for stem in stems:
            if depth_format == 'png':
                millimetres = np.full((H, W), 2500, np.uint16)
                millimetres[0, 0] = 0
                cv2.imwrite(str(root / 'depth' / f'{stem}.png'), millimetres)
            else:
                np.save(root / 'depth' / f'{stem}.npy', np.full((H, W), 1.25, np.float32))
    if with_labels:
        (root / 'labels').mkdir()
        labels = np.full((H, W), 3, np.uint8)
        labels[-1, :] = 255
        for stem in stems:
            cv2.imwrite(str(root / 'labels' / f'{stem}.png'), labels)
    return root


def test_folder_png_depth_in_millimetres_reads_metres(tmp_path):
    dataset = FolderDataset(write_folder(tmp_path))
    sample = dataset[0]
    assert len(dataset) == 2
    assert sample['image'][0].min() == pytest.approx(200 / 255) and sample['image'][1:].max() == 0
    assert sample['depth'][0, 1, 1] == pytest.approx(2.5)   # 2500 mm
    assert sample['depth'][0, 0, 0] == 0                     # 0 stays invalid
    assert torch.all(sample['labels'][:-1] == 3) and torch.all(sample['labels'][-1] == 255)


def test_folder_npy_depth_in_metres_and_shared_K(tmp_path):
    root = write_folder(tmp_path, depth_format='npy')
    (root / 'K.txt').write_text('100 0 3.5\n0 100 2.5\n0 0 1\n')
    sample = FolderDataset(root)[1]
    assert torch.all(sample['depth'] == 1.25)
    np.testing.assert_allclose(sample['K'].numpy(), [[100, 0, 3.5], [0, 100, 2.5], [0, 0, 1]])


def test_folder_without_depth_or_labels_is_invalid_and_void(tmp_path):
    sample = FolderDataset(write_folder(tmp_path, depth_format=None, with_labels=False))[0]
    assert torch.all(sample['depth'] == 0) and torch.all(sample['labels'] == 255)


def test_folder_per_image_K(tmp_path):
    root = write_folder(tmp_path)
    (root / 'K').mkdir()
    for index, stem in enumerate(('a', 'b')):
        np.save(root / 'K' / f'{stem}.npy', np.diag([10.0 + index, 10.0, 1.0]))
    assert FolderDataset(root)[1]['K'][0, 0] == 11.0


def test_folder_errors_name_the_file(tmp_path):
    root = write_folder(tmp_path / 'stems')
    (root / 'labels' / 'b.png').rename(root / 'labels' / 'c.png')
    with pytest.raises(DatasetError, match=str(root / 'labels')):
        FolderDataset(root)

    root = write_folder(tmp_path / 'eight_bit_depth')
    cv2.imwrite(str(root / 'depth' / 'a.png'), np.full((H, W), 3, np.uint8))
    depth_png = root / 'depth' / 'a.png'
    with pytest.raises(DatasetError, match=rf'{depth_png}: depth PNG must be .*16-bit'):
        FolderDataset(root)[0]

    root = write_folder(tmp_path / 'corrupt')
    (root / 'rgb' / 'b.png').write_bytes(b'\x89PNG broken')
    with pytest.raises(DatasetError, match=rf'{root / "rgb" / "b.png"}: unreadable'):
        FolderDataset(root)[1]

    root = write_folder(tmp_path / 'shape')
    cv2.imwrite(str(root / 'labels' / 'a.png'), np.zeros((H + 1, W), np.uint8))
    with pytest.raises(DatasetError, match=rf'{root / "labels" / "a.png"}: labels is 7x8'):
        FolderDataset(root)[0]

    root = write_folder(tmp_path / 'range')
    with pytest.raises(DatasetError, match=rf'{root / "labels" / "a.png"}: label value 3'):
        FolderDataset(root, num_classes=3)[0]

    with pytest.raises(DatasetError, match=str(tmp_path / 'nothing' / 'rgb')):
        FolderDataset(tmp_path / 'nothing')


# ----------------------------------------------------------------------------- augmentation

def grid_sample(height: int = 4, width: int = 8) -> dict:
    """labels[r, c] = 10 r + c; image channel 0 = c / 10 (a horizontal ramp); depth 3 m."""
    rows, cols = np.mgrid[0:height, 0:width]
    image = np.stack([cols / 10.0, rows / 10.0, np.zeros_like(cols, float)], axis=-1)
    depth = np.full((height, width), 3.0, np.float32)
    depth[0, 0] = 0.0
    K = np.array([[10.0, 0.0, 3.5], [0.0, 10.0, 1.5], [0.0, 0.0, 1.0]])
    return make_sample(image.astype(np.float32), depth, 10 * rows + cols, K)


def test_scale_crop_divides_depth_and_shifts_K():
    sample = grid_sample()
    # scale 2 -> a 2x4 window at top=1, left=2, resized back to 4x8.
    result = RandomScaleCrop(scales=(2.0,)).apply(sample, 2.0, 1, 2)
    assert result['image'].shape == (3, 4, 8)
    # nearest: output (y, x) comes from window pixel (y // 2, x // 2).
    rows, cols = np.mgrid[0:4, 0:8]
    np.testing.assert_array_equal(result['labels'].numpy(), 10 * (1 + rows // 2) + 2 + cols // 2)
    assert torch.all(result['depth'] == 1.5)   # 3 m / 2; window excludes the invalid pixel
    # bilinear at output x = 3: window x = (3 + 0.5) / 2 - 0.5 = 1.25 -> source x 3.25.
    assert float(result['image'][0, 2, 3]) == pytest.approx(0.325, abs=1e-6)
    # K: cx 3.5 - 2 = 1.5 -> (1.5 + 0.5) * 2 - 0.5 = 3.5; cy 1.5 - 1 = 0.5 -> 1.5; f doubled.
    np.testing.assert_allclose(result['K'].numpy(), [[20, 0, 3.5], [0, 20, 1.5], [0, 0, 1]])


def test_scale_crop_keeps_invalid_depth_invalid():
    result = RandomScaleCrop(scales=(2.0,)).apply(grid_sample(), 2.0, 0, 0)
    assert torch.all(result['depth'][0, :2, :2] == 0) and result['depth'][0, 2, 2] == 1.5


def test_scale_crop_is_deterministic_for_a_seed_and_stays_inside():
    outputs = []
    for _ in range(2):
        generator = torch.Generator().manual_seed(123)
        crop = RandomScaleCrop(scales=(1.0, 1.2, 1.5), generator=generator)
        outputs.append([crop(grid_sample(12, 16))['labels'] for _ in range(5)])
    for first, second in zip(*outputs):
        assert torch.equal(first, second)
    crop = RandomScaleCrop(scales=(1.5,), generator=torch.Generator().manual_seed(0))
    for _ in range(20):
        scale, top, left = crop.sample_params(12, 16)
        assert scale == 1.5 and 0 <= top <= 12 - 8 and 0 <= left <= 16 - 11


def test_scale_crop_to_a_different_output_size():
    result = RandomScaleCrop(size=(2, 4), scales=(1.0,)).apply(grid_sample(), 1.0, 0, 0)
    assert result['labels'].shape == (2, 4) and torch.all(result['depth'][0, 1] == 3.0)


def test_horizontal_flip_mirrors_maps_and_K():
    sample = grid_sample()
    flipped = RandomHorizontalFlip(p=1.0)(sample)
    np.testing.assert_array_equal(flipped['labels'].numpy(), sample['labels'].numpy()[:, ::-1])
    assert flipped['depth'][0, 0, 7] == 0
    assert float(flipped['K'][0, 2]) == pytest.approx(8 - 1 - 3.5)
    assert RandomHorizontalFlip(p=0.0)(sample) is sample


def test_flip_probability_is_respected_and_seeded():
    flip = RandomHorizontalFlip(p=0.5, generator=torch.Generator().manual_seed(5))
    sample = grid_sample()
    flips = [not torch.equal(flip(sample)['labels'], sample['labels']) for _ in range(400)]
    assert 150 < sum(flips) < 250
    replay = RandomHorizontalFlip(p=0.5, generator=torch.Generator().manual_seed(5))
    assert flips[:20] == [not torch.equal(replay(sample)['labels'], sample['labels'])
                          for _ in range(20)]


def test_resize_sample_scales_K_and_uses_nearest_for_labels():
    result = resize_sample(grid_sample(), (2, 4))
    # nearest-exact halving picks source (2y + 1, 2x + 1).
    np.testing.assert_array_equal(result['labels'].numpy(), [[11, 13, 15, 17], [31, 33, 35, 37]])
    # fx 10 -> 5; cx (3.5 + 0.5) / 2 - 0.5 = 1.5; cy (1.5 + 0.5) / 2 - 0.5 = 0.5
    np.testing.assert_allclose(result['K'].numpy(), [[5, 0, 1.5], [0, 5, 0.5], [0, 0, 1]])
    assert torch.all(result['depth'] == 3.0)


# ----------------------------------------------------------------------------- registry

def test_registry_specs_and_class_counts(tmp_path):
    write_split(tmp_path / 'nyu', 'train', 2)
    write_split(tmp_path / 'city', 'val', 2, label_folder='label_19')
    write_split(tmp_path / 'synth', 'train', 2, with_K=True)
    assert build_dataset(f'nyuv2:{tmp_path / "nyu"}', 'train')[1] == 13
    assert build_dataset(f'cityscapes19:{tmp_path / "city"}', 'val')[1] == 19
    assert build_dataset(f'cityscapes:{tmp_path / "city"}', 'val', num_classes=19)[1] == 19
    dataset, classes = build_dataset(f'synthetic:{tmp_path / "synth"}', 'train')
    assert classes == 7 and 'K' in dataset[0]


def test_registry_folder_classes_from_file_or_argument(tmp_path):
    root = write_folder(tmp_path)
    assert build_dataset(f'folder:{root}', 'train', num_classes=5)[1] == 5
    with pytest.raises(DatasetError, match='classes.txt'):
        build_dataset(f'folder:{root}', 'train')
    (root / 'classes.txt').write_text('road\nwall\ncar\nperson\n')
    assert build_dataset(f'folder:{root}', 'train')[1] == 4
    with pytest.raises(DatasetError, match='lists 4 classes'):
        build_dataset(f'folder:{root}', 'train', num_classes=9)
    # Without labels/ there is nothing to count: depth-only data needs no class count.
    shutil.rmtree(root / 'labels')
    (root / 'classes.txt').unlink()
    dataset, classes = build_dataset(f'folder:{root}', 'train')
    assert classes is None and bool((dataset[0]['labels'] == 255).all())


def test_registry_size_frames_and_augment(tmp_path):
    write_split(tmp_path, 'train', 3, with_K=True)
    dataset, _ = build_dataset(f'synthetic:{tmp_path}', 'train', size=(3, 4), num_frames=2)
    assert len(dataset) == 2
    sample = dataset[1]
    assert sample['image'].shape == (3, 3, 4) and sample['labels'].shape == (3, 4)
    np.testing.assert_allclose(sample['K'][0, 0].item(), 2.5)   # fx 5 at width 8 -> 4
    torch.manual_seed(0)
    augmented, _ = build_dataset(f'synthetic:{tmp_path}', 'train', size=(3, 4), augment=True)
    assert all(augmented[i]['image'].shape == (3, 3, 4) for i in range(3))
    with pytest.raises(DatasetError, match='fewer than the 5'):
        build_dataset(f'synthetic:{tmp_path}', 'train', num_frames=5)


@pytest.mark.parametrize('spec', ['kitti:/data', 'nyuv2', 'nyuv2:', 'folder', ''])
def test_unknown_spec_lists_valid_forms(spec):
    with pytest.raises(DatasetError, match='valid forms: synthetic, synthetic:DIR, nyuv2:DIR'):
        parse_spec(spec)


def test_registry_renders_synthetic_on_the_fly_with_split_seeds():
    from jointdistill_core.data.synthetic import SPLIT_SEED_START, render_scene
    dataset, classes = build_dataset('synthetic', 'val', size=(32, 64), num_frames=2)
    assert classes == 7 and len(dataset) == 2
    sample = dataset[1]
    frame = render_scene(SPLIT_SEED_START['val'] + 1, 32, 64)
    np.testing.assert_allclose(sample['image'].numpy(), frame.image.transpose(2, 0, 1) / 255.0,
                               atol=1e-6)
    np.testing.assert_array_equal(sample['labels'].numpy(), frame.labels)
    torch.manual_seed(1)
    augmented, _ = build_dataset('synthetic', 'train', size=(32, 64), num_frames=1, augment=True)
    assert augmented[0]['depth'].shape == (1, 32, 64) and 'K' in augmented[0]
    with pytest.raises(DatasetError, match="got 'dev'"):
        build_dataset('synthetic', 'dev')
