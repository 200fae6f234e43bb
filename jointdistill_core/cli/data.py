"""`jointdistill data synth`: write synthetic street scenes to disk in the mtan .npy layout.

OUT/SPLIT/ receives image/{i}.npy (H, W, 3 float32 RGB in [0, 1]), depth/{i}.npy (H, W
float32 metres, 0 = invalid/sky), label/{i}.npy (H, W float32 class ids, -1 = void, the mtan
convention), K/{i}.npy (3, 3 float64 intrinsics in pixels), plus contact_sheet.png,
class_frequencies.png and meta.json. Frame i is scene seed SPLIT_SEED_START[split] + i.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
from pathlib import Path

import numpy as np
from tqdm import tqdm

from jointdistill_core.classes import CITYSCAPES_7
from jointdistill_core.cli import CliError
from jointdistill_core.cli.arguments import size_argument
from jointdistill_core.data.sample import IGNORE_INDEX
from jointdistill_core.data.synthetic import SPLIT_SEED_START, render_scene

ARRAY_FOLDERS = ('image', 'depth', 'label', 'K')
SUMMARY_FILES = ('contact_sheet.png', 'class_frequencies.png', 'meta.json')
MTAN_VOID = -1.0
CONTACT_SHEET_FRAMES = 4
CONTACT_SHEET_MAX_DEPTH_M = 80.0
MIN_SIZE = 8


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}') from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}')
    return value


def _prepare_split_folder(folder: Path, force: bool) -> None:
    """Create the split folder; refuse a non-empty one unless force, then clear only our files."""
    if folder.exists() and not folder.is_dir():
        raise CliError(f'{folder} exists and is not a folder')
    if folder.is_dir() and any(folder.iterdir()):
        if not force:
            raise CliError(f'{folder} is not empty; pass --force to replace the synthetic frames '
                           'written there')
        for name in ARRAY_FOLDERS:
            shutil.rmtree(folder / name, ignore_errors=True)
        for name in SUMMARY_FILES:
            (folder / name).unlink(missing_ok=True)
    for name in ARRAY_FOLDERS:
        (folder / name).mkdir(parents=True, exist_ok=True)


def write_frame(task: tuple[Path, int, int, int, int]) -> np.ndarray:
    """Render frame `index` (scene `seed`) and save its four arrays; returns the (256,) label
    histogram in pixels (uint8 ids, 255 void)."""
    folder, index, seed, height, width = task
    frame = render_scene(seed, height, width)
    labels = frame.labels.astype(np.float32)
    labels[frame.labels == IGNORE_INDEX] = MTAN_VOID
    np.save(folder / 'image' / f'{index}.npy', frame.image.astype(np.float32) / 255.0)
    np.save(folder / 'depth' / f'{index}.npy', frame.depth)
    np.save(folder / 'label' / f'{index}.npy', labels)
    np.save(folder / 'K' / f'{index}.npy', frame.K)
    return np.bincount(frame.labels.ravel(), minlength=256)


def _render_all(folder: Path, split: str, count: int, size: tuple[int, int],
                workers: int) -> np.ndarray:
    start = SPLIT_SEED_START[split]
    tasks = [(folder, index, start + index, *size) for index in range(count)]
    histogram = np.zeros(256, np.int64)
    progress = dict(total=count, desc=f'synth {split}', unit='frame')
    if workers == 1:
        for task in tqdm(tasks, **progress):
            histogram += write_frame(task)
        return histogram
    # fork starts workers at once; spawn (elsewhere) re-imports torch in every worker.
    method = 'fork' if 'fork' in multiprocessing.get_all_start_methods() else 'spawn'
    with multiprocessing.get_context(method).Pool(workers) as pool:
        for counts in tqdm(pool.imap(write_frame, tasks, chunksize=4), **progress):
            histogram += counts
    return histogram


def read_frame(folder: Path, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame `index` of a written split as (image uint8 RGB, depth metres, labels uint8 255
    void)."""
    image = np.load(folder / 'image' / f'{index}.npy')
    depth = np.load(folder / 'depth' / f'{index}.npy')
    label = np.load(folder / 'label' / f'{index}.npy')
    labels = np.where(label < 0, IGNORE_INDEX, label).astype(np.uint8)
    return (np.clip(image * 255.0 + 0.5, 0, 255)).astype(np.uint8), depth, labels


def write_class_frequency_chart(frequencies: dict[str, float], path: Path, title: str) -> None:
    """Bar chart PNG of per-class pixel fractions, bars in the class colours."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    from jointdistill_core.classes import class_colors
    names = list(frequencies)
    colors = class_colors(len(CITYSCAPES_7))[:len(names)] / 255.0
    figure, axes = plt.subplots(figsize=(6, 3.2), dpi=110)
    bars = axes.bar(names, [100 * frequencies[name] for name in names], color=colors,
                    edgecolor='black', linewidth=0.5)
    axes.bar_label(bars, fmt='%.1f', fontsize=8)
    axes.set_ylabel('pixels (%)')
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _write_summaries(folder: Path, split: str, count: int, size: tuple[int, int],
                     histogram: np.ndarray) -> dict:
    import cv2

    from jointdistill_core.visualize import contact_sheet
    rows = [read_frame(folder, index) for index in range(min(CONTACT_SHEET_FRAMES, count))]
    sheet = contact_sheet(rows, max_depth=CONTACT_SHEET_MAX_DEPTH_M)
    if not cv2.imwrite(str(folder / 'contact_sheet.png'), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise CliError(f'could not write {folder / "contact_sheet.png"}')
    total = int(histogram.sum())
    frequencies = {name: float(histogram[index]) / total for index, name in enumerate(CITYSCAPES_7)}
    start = SPLIT_SEED_START[split]
    meta = {
        'source': 'jointdistill synthetic street scenes',
        'split': split,
        'size': list(size),
        'count': count,
        'seeds': {'first': start, 'last': start + count - 1},
        'classes': list(CITYSCAPES_7),
        'class_frequencies': frequencies,
        'void_fraction': float(histogram[IGNORE_INDEX]) / total,
        'label_void_value': MTAN_VOID,
        'depth': 'metres along the optical axis, 0 = invalid (sky)',
        'contact_sheet': {'frames': len(rows),
                          'depth_colour_range_m': [0, CONTACT_SHEET_MAX_DEPTH_M]},
    }
    (folder / 'meta.json').write_text(json.dumps(meta, indent=2) + '\n')
    write_class_frequency_chart(frequencies, folder / 'class_frequencies.png',
                                f'synthetic {split}: {count} frames at {size[0]}x{size[1]}')
    return meta


def _synth(args: argparse.Namespace) -> int:
    folder = Path(args.out) / args.split
    try:
        _prepare_split_folder(folder, args.force)
        histogram = _render_all(folder, args.split, args.num, args.size, args.workers)
        meta = _write_summaries(folder, args.split, args.num, args.size, histogram)
    except OSError as error:
        raise CliError(f'{error.filename or folder}: {error.strerror or error}') from None
    shares = ', '.join(f'{name} {100 * share:.1f}%'
                       for name, share in meta['class_frequencies'].items())
    print(f'wrote {args.num} frames of {args.size[0]}x{args.size[1]} to {folder} '
          f'(seeds {meta["seeds"]["first"]}..{meta["seeds"]["last"]}); pixels: {shares}')
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `data` and its verbs to the subcommands."""
    parser = subparsers.add_parser('data', help='data sets on disk',
                                   description='Data sets on disk. Verbs below.')
    verbs = parser.add_subparsers(dest='verb', metavar='VERB', required=True)
    synth = verbs.add_parser(
        'synth', help='render synthetic street scenes into the mtan .npy layout',
        description=__doc__.split('\n\n')[1].replace('\n', ' '))
    synth.add_argument('--out', required=True, type=Path,
                       help='data set root; frames go to OUT/SPLIT/')
    synth.add_argument('--split', required=True, choices=sorted(SPLIT_SEED_START),
                       help='seed range: train from 0, val from 1000000, test from 2000000')
    synth.add_argument('--num', required=True, type=_positive_int, help='number of frames')
    synth.add_argument('--size', required=True, type=size_argument(minimum=MIN_SIZE),
                       help='HxW pixels, e.g. 128x256')
    synth.add_argument('--workers', type=_positive_int, default=1,
                       help='rendering processes (default 1); the output does not depend on it')
    synth.add_argument('--force', action='store_true',
                       help='replace the frames and summaries of a non-empty split folder '
                            '(other files there are kept)')
    synth.set_defaults(handler=_synth)
