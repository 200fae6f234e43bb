"""`jointdistill data synth`: write synthetic scenes to disk in the mtan .npy layout.

OUT/SPLIT/ receives image/{i}.npy (H, W, 3 float32 RGB in [0, 1]), depth/{i}.npy (H, W
float32 metres, 0 = invalid/sky), label/{i}.npy (H, W float32 class ids, -1 = void, the mtan
convention), K/{i}.npy (3, 3 float64 intrinsics in pixels), plus contact_sheet.png,
class_frequencies.png and meta.json. Frame i is scene seed SPLIT_SEED_START[split] + i; the
scene mix (--mix) and field-of-view range (--fov) choose what is rendered.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from jointdistill_core.classes import CITYSCAPES_7
from jointdistill_core.cli import CliError
from jointdistill_core.cli.arguments import size_argument
from jointdistill_core.data.sample import IGNORE_INDEX
from jointdistill_core.data.synthetic import (
    DEFAULT_FOV_RANGE_DEG,
    DEFAULT_MIX,
    LAYOUTS,
    SPLIT_SEED_START,
    SceneMix,
    render_scene,
)
from jointdistill_core.data.synthetic.camera import check_fov_range

ARRAY_FOLDERS = ('image', 'depth', 'label', 'K')
SUMMARY_FILES = ('contact_sheet.png', 'class_frequencies.png', 'meta.json')
MTAN_VOID = -1.0
CONTACT_SHEET_FRAMES = 4
CONTACT_SHEET_MAX_DEPTH_M = 80.0
MIN_SIZE = 8


@dataclass(frozen=True)
class RenderOptions:
    """What every frame of a run is rendered with (see `render_scene`)."""
    size: tuple[int, int]
    mix: SceneMix
    fov_range_deg: tuple[float, float]
    camera_effects: bool


def parse_mix(text: str) -> SceneMix:
    """'road=0.45,sidewalk=0.25,indoor=0.3' -> SceneMix (groups or layout names)."""
    try:
        return SceneMix.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_fov(text: str) -> tuple[float, float]:
    """'MIN-MAX' (or one value) horizontal field of view in degrees."""
    match = re.fullmatch(r'\s*([0-9.]+)\s*(?:-\s*([0-9.]+))?\s*', text)
    if not match:
        raise argparse.ArgumentTypeError(f'--fov must be MIN-MAX degrees, e.g. 40-110; '
                                         f'got {text!r}')
    low = float(match.group(1))
    high = float(match.group(2)) if match.group(2) else low
    try:
        return check_fov_range((low, high))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f'{text!r}: {error}') from None


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


def write_frame(task: tuple[Path, int, int, RenderOptions]) -> tuple[np.ndarray, str, str]:
    """Render frame `index` (scene `seed`) and save its four arrays; returns the (256,) label
    histogram in pixels (uint8 ids, 255 void), the layout and the lighting."""
    folder, index, seed, options = task
    frame = render_scene(seed, *options.size, options.mix, options.fov_range_deg,
                         options.camera_effects)
    labels = frame.labels.astype(np.float32)
    labels[frame.labels == IGNORE_INDEX] = MTAN_VOID
    np.save(folder / 'image' / f'{index}.npy', frame.image.astype(np.float32) / 255.0)
    np.save(folder / 'depth' / f'{index}.npy', frame.depth)
    np.save(folder / 'label' / f'{index}.npy', labels)
    np.save(folder / 'K' / f'{index}.npy', frame.K)
    return np.bincount(frame.labels.ravel(), minlength=256), frame.layout, frame.lighting


@dataclass
class RunSummary:
    """Pixel histogram (256,) over all frames, frame counts per layout and lighting, and
    the layout of every frame in order."""
    histogram: np.ndarray
    layouts: dict[str, int]
    lighting: dict[str, int]
    frame_layouts: list[str]

    def add(self, result: tuple[np.ndarray, str, str]) -> None:
        counts, layout, lighting = result
        self.histogram += counts
        self.layouts[layout] = self.layouts.get(layout, 0) + 1
        self.lighting[lighting] = self.lighting.get(lighting, 0) + 1
        self.frame_layouts.append(layout)

    def sheet_frames(self, count: int) -> list[int]:
        """Up to `count` frame indices for the contact sheet: the first frame of every
        layout present (in LAYOUTS order), then the earliest others, in index order."""
        first = {}
        for index, layout in enumerate(self.frame_layouts):
            first.setdefault(layout, index)
        chosen = [first[name] for name in LAYOUTS if name in first][:count]
        rest = (index for index in range(len(self.frame_layouts)) if index not in chosen)
        chosen += [next(rest) for _ in range(min(count, len(self.frame_layouts)) - len(chosen))]
        return sorted(chosen)


def _render_all(folder: Path, split: str, count: int, options: RenderOptions,
                workers: int) -> RunSummary:
    start = SPLIT_SEED_START[split]
    tasks = [(folder, index, start + index, options) for index in range(count)]
    summary = RunSummary(np.zeros(256, np.int64), {}, {}, [])
    progress = dict(total=count, desc=f'synth {split}', unit='frame')
    if workers == 1:
        for task in tqdm(tasks, **progress):
            summary.add(write_frame(task))
        return summary
    # fork starts workers at once; spawn (elsewhere) re-imports torch in every worker.
    method = 'fork' if 'fork' in multiprocessing.get_all_start_methods() else 'spawn'
    with multiprocessing.get_context(method).Pool(workers) as pool:
        for result in tqdm(pool.imap(write_frame, tasks, chunksize=4), **progress):
            summary.add(result)
    return summary


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


def _write_summaries(folder: Path, split: str, count: int, options: RenderOptions,
                     summary: RunSummary, sheet_frames: int) -> dict:
    import cv2

    from jointdistill_core.visualize import contact_sheet
    size, histogram = options.size, summary.histogram
    shown = summary.sheet_frames(sheet_frames)
    rows = [read_frame(folder, index) for index in shown]
    sheet = contact_sheet(rows, max_depth=CONTACT_SHEET_MAX_DEPTH_M)
    if not cv2.imwrite(str(folder / 'contact_sheet.png'), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise CliError(f'could not write {folder / "contact_sheet.png"}')
    total = int(histogram.sum())
    frequencies = {name: float(histogram[index]) / total for index, name in enumerate(CITYSCAPES_7)}
    start = SPLIT_SEED_START[split]
    meta = {
        'source': 'jointdistill synthetic scenes',
        'split': split,
        'size': list(size),
        'count': count,
        'seeds': {'first': start, 'last': start + count - 1},
        'mix': str(options.mix),
        'layout_fractions': options.mix.fractions(),
        'fov_range_deg': list(options.fov_range_deg),
        'camera_effects': options.camera_effects,
        'layouts': dict(sorted(summary.layouts.items())),
        'lighting': dict(sorted(summary.lighting.items())),
        'classes': list(CITYSCAPES_7),
        'class_frequencies': frequencies,
        'void_fraction': float(histogram[IGNORE_INDEX]) / total,
        'label_void_value': MTAN_VOID,
        'depth': 'metres along the optical axis, 0 = invalid (sky)',
        'contact_sheet': {'frames': shown,
                          'depth_colour_range_m': [0, CONTACT_SHEET_MAX_DEPTH_M]},
    }
    (folder / 'meta.json').write_text(json.dumps(meta, indent=2) + '\n')
    write_class_frequency_chart(frequencies, folder / 'class_frequencies.png',
                                f'synthetic {split}: {count} frames at {size[0]}x{size[1]}')
    return meta


def _synth(args: argparse.Namespace) -> int:
    folder = Path(args.out) / args.split
    options = RenderOptions(args.size, args.mix, args.fov, not args.no_camera_effects)
    try:
        _prepare_split_folder(folder, args.force)
        summary = _render_all(folder, args.split, args.num, options, args.workers)
        meta = _write_summaries(folder, args.split, args.num, options, summary, args.sheet)
    except OSError as error:
        raise CliError(f'{error.filename or folder}: {error.strerror or error}') from None
    shares = ', '.join(f'{name} {100 * share:.1f}%'
                       for name, share in meta['class_frequencies'].items())
    layouts = ', '.join(f'{name} {count}' for name, count in meta['layouts'].items())
    print(f'wrote {args.num} frames of {args.size[0]}x{args.size[1]} to {folder} '
          f'(seeds {meta["seeds"]["first"]}..{meta["seeds"]["last"]}); layouts: {layouts}; '
          f'pixels: {shares}')
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `data` and its verbs to the subcommands."""
    parser = subparsers.add_parser('data', help='data sets on disk',
                                   description='Data sets on disk. Verbs below.')
    verbs = parser.add_subparsers(dest='verb', metavar='VERB', required=True)
    synth = verbs.add_parser(
        'synth', help='render synthetic scenes into the mtan .npy layout',
        description=__doc__.split('\n\n')[1].replace('\n', ' '))
    synth.add_argument('--out', required=True, type=Path,
                       help='data set root; frames go to OUT/SPLIT/')
    synth.add_argument('--split', required=True, choices=sorted(SPLIT_SEED_START),
                       help='seed range: train from 0, val from 1000000, test from 2000000')
    synth.add_argument('--num', required=True, type=_positive_int, help='number of frames')
    synth.add_argument('--size', required=True, type=size_argument(minimum=MIN_SIZE),
                       help='HxW pixels, e.g. 128x256')
    synth.add_argument('--mix', type=parse_mix, default=DEFAULT_MIX,
                       help=f'scene mix: weights of groups (road, sidewalk, indoor) or layouts '
                            f'({", ".join(LAYOUTS)}), e.g. road=1,warehouse=0.5 '
                            f'(default {DEFAULT_MIX})')
    synth.add_argument('--fov', type=parse_fov, default=DEFAULT_FOV_RANGE_DEG,
                       help='horizontal field of view range in degrees, MIN-MAX or one value '
                            f'(default {DEFAULT_FOV_RANGE_DEG[0]:g}-{DEFAULT_FOV_RANGE_DEG[1]:g})')
    synth.add_argument('--no-camera-effects', action='store_true',
                       help='clean images: no blur, noise, vignetting, white balance error or '
                            'JPEG (depth and labels are the same either way)')
    synth.add_argument('--sheet', type=_positive_int, default=CONTACT_SHEET_FRAMES,
                       help=f'frames in contact_sheet.png, one of every layout first '
                            f'(default {CONTACT_SHEET_FRAMES})')
    synth.add_argument('--workers', type=_positive_int, default=1,
                       help='rendering processes (default 1); the output does not depend on it')
    synth.add_argument('--force', action='store_true',
                       help='replace the frames and summaries of a non-empty split folder '
                            '(other files there are kept)')
    synth.set_defaults(handler=_synth)
