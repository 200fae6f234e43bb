"""Frame selection (every N-th, minimum time gap) and the held-back end of a recording or
image folder, through spec options (`folder:DIR?every=2&val=0.25`)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from jointdistill_core.data.mtan import DatasetError
from jointdistill_core.data.registry import build_dataset
from jointdistill_core.data.selection import FrameSelection, split_spec_options

MS = 1_000_000  # nanoseconds


def test_every_and_gap_select_by_index_then_by_time():
    stamps = [0, 100 * MS, 150 * MS, 400 * MS, 450 * MS, 900 * MS]
    assert FrameSelection(every=2).kept(stamps) == [0, 2, 4]
    # gap 0.2 s: 0 kept; 100, 150 too soon; 400 kept; 450 too soon; 900 kept.
    assert FrameSelection(min_gap_s=0.2).kept(stamps) == [0, 3, 5]
    # every first, then the gap among the survivors (0, 150, 450 ms).
    assert FrameSelection(every=2, min_gap_s=0.2).kept(stamps) == [0, 4]


def test_the_held_back_part_is_the_end():
    selection = FrameSelection(val=0.25)
    indices = list(range(0, 20, 2))  # 10 kept frames
    assert selection.split(indices, 'train', 's') == [0, 2, 4, 6, 8, 10, 12, 14]
    assert selection.split(indices, 'val', 's') == [16, 18]  # round(2.5) = 2
    assert selection.split(indices, 'test', 's') == [16, 18]
    assert FrameSelection().split(indices, 'anything', 's') == indices  # val 0: all
    with pytest.raises(DatasetError, match='1 frame.*too few'):
        selection.split([7], 'train', 's')
    with pytest.raises(DatasetError, match="split must be one of train, val, test, got 'dev'"):
        selection.split(indices, 'dev', 's')


def test_options_parse_and_errors_name_spec_and_option():
    assert split_spec_options('folder:a/b?every=3&val=0.1') == ('folder:a/b',
                                                                {'every': '3', 'val': '0.1'})
    assert split_spec_options('folder:a/b') == ('folder:a/b', {})
    for options, message in (('every=0', 'every must be >= 1'),
                             ('every=x', 'every=.x. is not a whole number'),
                             ('val=1', r'val must be a fraction in \[0, 1\)'),
                             ('gap=-1', 'gap must be >= 0 seconds')):
        with pytest.raises(DatasetError, match=message):
            FrameSelection.from_options(split_spec_options(f'k:d?{options}')[1], 'k:d?',
                                        0.0, has_time=True)
    with pytest.raises(DatasetError, match='gap needs time stamps'):
        FrameSelection.from_options({'gap': '1'}, 'folder:d', 0.0, has_time=False)
    with pytest.raises(DatasetError, match="option 'val' is given twice"):
        split_spec_options('folder:d?val=0.1&val=0.2')
    with pytest.raises(DatasetError, match='is not KEY=VALUE'):
        split_spec_options('folder:d?val')


def write_folder(root, count: int):
    (root / 'rgb').mkdir(parents=True)
    for index in range(count):  # the frame index in the red channel
        cv2.imwrite(str(root / 'rgb' / f'{index:03d}.png'),
                    np.full((4, 8, 3), (0, 0, 10 * index), np.uint8))
    return root


def red_values(dataset) -> list[int]:
    return [round(float(dataset[i]['image'][0, 0, 0]) * 255) for i in range(len(dataset))]


def test_folder_spec_options_select_and_split_in_name_order(tmp_path):
    root = write_folder(tmp_path / 'frames', 10)
    train, _ = build_dataset(f'folder:{root}?every=2&val=0.4', 'train')
    val, _ = build_dataset(f'folder:{root}?every=2&val=0.4', 'val')
    assert red_values(train) == [0, 20, 40]
    assert red_values(val) == [60, 80]
    whole, _ = build_dataset(f'folder:{root}', 'val')
    assert red_values(whole) == list(range(0, 100, 10))  # no val option: the whole folder
    mixed, _ = build_dataset(f'folder:{root}?val=0.5@1,folder:{root}?every=5@1', 'val',
                             size=(4, 8))
    assert sorted(set(red_values(mixed))) == [0, 50, 60, 70, 80, 90]
    with pytest.raises(DatasetError, match=r"folder takes no option image \(its options: "
                                           r"every, val\)"):
        build_dataset(f'folder:{root}?image=/x', 'train')
