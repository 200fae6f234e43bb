"""`jointdistill data synth` writes the mtan layout; contact sheets are valid PNGs."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from jointdistill_core.classes import CITYSCAPES_7_COLORS
from jointdistill_core.cli import main
from jointdistill_core.data.synthetic import SceneMix, render_scene
from jointdistill_core.visualize import contact_sheet

HEIGHT, WIDTH = 32, 64


def _synth(out, *extra: str) -> int:
    return main(['data', 'synth', '--out', str(out), '--split', 'val', '--size',
                 f'{HEIGHT}x{WIDTH}', *extra])


def _npy_names(folder) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_synth_writes_the_mtan_layout(tmp_path):
    assert _synth(tmp_path, '--num', '5') == 0
    split = tmp_path / 'val'
    for name in ('image', 'depth', 'label', 'K'):
        assert _npy_names(split / name) == [f'{i}.npy' for i in range(5)], name
    for index in (0, 4):
        image = np.load(split / 'image' / f'{index}.npy')
        depth = np.load(split / 'depth' / f'{index}.npy')
        label = np.load(split / 'label' / f'{index}.npy')
        K = np.load(split / 'K' / f'{index}.npy')
        assert image.shape == (HEIGHT, WIDTH, 3) and image.dtype == np.float32
        assert 0 <= image.min() and image.max() <= 1
        assert depth.shape == (HEIGHT, WIDTH) and depth.dtype == np.float32
        assert label.shape == (HEIGHT, WIDTH) and label.dtype == np.float32
        assert K.shape == (3, 3) and K.dtype == np.float64
        frame = render_scene(1_000_000 + index, HEIGHT, WIDTH)   # val split seeds
        np.testing.assert_array_equal(image, frame.image / np.float32(255))
        np.testing.assert_array_equal(depth, frame.depth)
        np.testing.assert_array_equal(label, np.where(frame.labels == 255, -1, frame.labels))
        np.testing.assert_array_equal(K, frame.K)

    meta = json.loads((split / 'meta.json').read_text())
    assert meta['count'] == 5 and meta['size'] == [HEIGHT, WIDTH]
    assert meta['seeds'] == {'first': 1_000_000, 'last': 1_000_004}
    assert meta['mix'] == 'road=0.45,sidewalk=0.25,indoor=0.3'
    assert meta['fov_range_deg'] == [40.0, 110.0] and meta['camera_effects'] is True
    assert sum(meta['layouts'].values()) == 5 and sum(meta['lighting'].values()) == 5
    assert meta['layouts'] == dict(sorted(
        (name, sum(render_scene(1_000_000 + i, 8, 8).layout == name for i in range(5)))
        for name in meta['layouts']))
    labels = np.concatenate([np.load(split / 'label' / f'{i}.npy').ravel() for i in range(5)])
    for class_id, name in enumerate(meta['classes']):
        assert meta['class_frequencies'][name] == pytest.approx(np.mean(labels == class_id))
    assert meta['void_fraction'] == pytest.approx(np.mean(labels == -1))

    sheet_bytes = (split / 'contact_sheet.png').read_bytes()
    assert sheet_bytes[:8] == b'\x89PNG\r\n\x1a\n'
    sheet = cv2.imread(str(split / 'contact_sheet.png'))
    assert sheet.shape == (4 * (HEIGHT + 4) + 4, 3 * WIDTH + 4 * 4, 3)   # 4 frames, gap 4
    chart = cv2.imread(str(split / 'class_frequencies.png'))
    assert chart is not None and chart.shape[0] > 100


def test_synth_refuses_a_non_empty_split_folder_without_force(tmp_path, capsys):
    assert _synth(tmp_path, '--num', '4') == 0
    split = tmp_path / 'val'
    before = (split / 'depth' / '3.npy').read_bytes()
    (split / 'notes.txt').write_text('mine')
    capsys.readouterr()
    assert _synth(tmp_path, '--num', '2') == 2
    error = capsys.readouterr().err
    assert 'not empty' in error and '--force' in error and str(split) in error
    assert (split / 'depth' / '3.npy').read_bytes() == before

    assert _synth(tmp_path, '--num', '2', '--force') == 0
    for name in ('image', 'depth', 'label', 'K'):
        assert _npy_names(split / name) == ['0.npy', '1.npy'], name   # no stale frames
    assert json.loads((split / 'meta.json').read_text())['count'] == 2
    assert (split / 'notes.txt').read_text() == 'mine'


def test_synth_mix_fov_sheet_and_clean_images(tmp_path):
    assert _synth(tmp_path / 'a', '--num', '3', '--mix', 'warehouse=1', '--fov', '70',
                  '--sheet', '2', '--no-camera-effects') == 0
    split = tmp_path / 'a' / 'val'
    meta = json.loads((split / 'meta.json').read_text())
    assert meta['layouts'] == {'warehouse': 3} and meta['lighting'] == {'indoor': 3}
    assert meta['layout_fractions'] == {'warehouse': 1.0}
    assert meta['fov_range_deg'] == [70.0, 70.0] and meta['camera_effects'] is False
    K = np.load(split / 'K' / '0.npy')
    assert K[0, 0] == pytest.approx((WIDTH / 2) / np.tan(np.deg2rad(35)))
    frame = render_scene(1_000_001, HEIGHT, WIDTH, SceneMix.parse('warehouse=1'), (70, 70),
                         camera_effects=False)
    np.testing.assert_array_equal(np.load(split / 'image' / '1.npy'), frame.image / np.float32(255))
    sheet = cv2.imread(str(split / 'contact_sheet.png'))
    assert sheet.shape[0] == 2 * (HEIGHT + 4) + 4
    assert meta['contact_sheet']['frames'] == [0, 1]


def test_contact_sheet_shows_every_layout_first(tmp_path):
    assert _synth(tmp_path, '--num', '12', '--mix', 'office=1,street=1', '--sheet', '3') == 0
    meta = json.loads((tmp_path / 'val' / 'meta.json').read_text())
    layouts = [render_scene(1_000_000 + i, 8, 8, SceneMix.parse('office=1,street=1')).layout
               for i in range(12)]
    shown = meta['contact_sheet']['frames']
    assert len(shown) == 3 and shown == sorted(shown)
    assert {layouts[i] for i in shown} == {'office', 'street'}
    firsts = {layouts.index('office'), layouts.index('street')}
    assert firsts <= set(shown)


@pytest.mark.parametrize('option,value,message', [('--mix', 'road', 'name=weight'),
                                                  ('--mix', 'mars=1', 'unknown layout'),
                                                  ('--fov', '120-60', 'field of view'),
                                                  ('--fov', 'wide', 'MIN-MAX')])
def test_synth_rejects_a_bad_mix_or_fov(tmp_path, capsys, option, value, message):
    with pytest.raises(SystemExit) as exit_info:
        _synth(tmp_path, '--num', '1', option, value)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert option in error and message in error
    assert not (tmp_path / 'val').exists()


@pytest.mark.parametrize('size', ['64by128', '4x64', '0x0', '128x'])
def test_synth_rejects_a_bad_size(tmp_path, capsys, size):
    with pytest.raises(SystemExit) as exit_info:
        main(['data', 'synth', '--out', str(tmp_path), '--split', 'train', '--num', '1',
              '--size', size])
    assert exit_info.value.code == 2
    assert '--size' in capsys.readouterr().err
    assert not (tmp_path / 'train').exists()


def test_synth_with_workers_matches_one_process(tmp_path):
    assert _synth(tmp_path / 'one', '--num', '6') == 0
    result = subprocess.run(
        [sys.executable, '-m', 'jointdistill_core', 'data', 'synth', '--out', str(tmp_path / 'two'),
         '--split', 'val', '--num', '6', '--size', f'{HEIGHT}x{WIDTH}', '--workers', '2'],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert '6/6' in result.stderr          # the tqdm progress bar reached the end
    for name in ('image', 'depth', 'label', 'K'):
        for index in range(6):
            one = (tmp_path / 'one' / 'val' / name / f'{index}.npy').read_bytes()
            assert (tmp_path / 'two' / 'val' / name / f'{index}.npy').read_bytes() == one


def test_contact_sheet_layout_and_colours():
    image = np.zeros((2, 3, 3), np.uint8)
    image[0, 0] = (10, 20, 30)
    depth = np.array([[1.0, 2.0, 0.0], [4.0, 0.0, 3.0]], np.float32)
    labels = np.array([[0, 4, 6], [255, 1, 5]], np.uint8)
    sheet = contact_sheet([(image, depth, labels), (image, depth, labels)], gap=1, max_depth=4.0)
    assert sheet.shape == (2 * 2 + 3, 3 * 3 + 4, 3)
    assert tuple(sheet[1, 1]) == (10, 20, 30)              # image tile at (gap, gap)
    labels_tile = sheet[1:3, 9:12]                          # third tile starts at 3 + 2 * (3 + 1)
    assert tuple(labels_tile[0, 2]) == tuple(CITYSCAPES_7_COLORS[6])
    assert tuple(labels_tile[1, 0]) == (0, 0, 0)           # void is black
    depth_tile = sheet[1:3, 5:8]
    assert tuple(depth_tile[0, 2]) == (0, 0, 0)            # invalid depth is black
    assert tuple(sheet[0, 0]) == (255, 255, 255)           # white gap
    assert tuple(sheet[4, 1]) == (10, 20, 30)              # second row starts at 1 + 2 + 1
    with pytest.raises(ValueError, match='frame 1'):
        contact_sheet([(image, depth, labels), (np.zeros((3, 3, 3), np.uint8), depth, labels)])
