"""PNG figures of a bag evaluation: latency histogram and per-frame plot (matplotlib Agg, no
pyplot state), and per-frame panels of overlays, depth colour maps and depth error maps (ground
truth panels only where the bag has ground truth)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from jointdistill_core.visualize import colorize_depth, overlay_labels

_ERROR_LUT: np.ndarray | None = None


def _figure(width_in: float = 7.0, height_in: float = 3.5) -> Figure:
    figure = Figure(figsize=(width_in, height_in), dpi=110, layout='constrained')
    FigureCanvasAgg(figure)
    return figure


def write_latency_figures(out: Path, per_frame: list[dict]) -> list[Path]:
    """latency_histogram.png and latency_per_frame.png (dropped frames marked); [] if no latency."""
    latencies = [r['latency_ms'] for r in per_frame if r['latency_ms'] is not None]
    if not latencies:
        return []
    histogram = _figure()
    axes = histogram.add_subplot()
    axes.hist(latencies, bins=min(40, max(5, len(latencies) // 3)), color='#3b75af')
    axes.axvline(float(np.percentile(latencies, 95)), color='#c44e52', linestyle='--', label='p95')
    axes.set_xlabel('latency (ms)')
    axes.set_ylabel('frames')
    axes.set_title(f'Latency of {len(latencies)} matched frames')
    axes.legend()
    histogram.savefig(out / 'latency_histogram.png')

    timeline = _figure(8.0, 3.5)
    axes = timeline.add_subplot()
    matched = [(r['index'], r['latency_ms']) for r in per_frame if r['latency_ms'] is not None]
    missed = [r['index'] for r in per_frame if r['status'] != 'matched']
    axes.plot(*zip(*matched), marker='.', linewidth=0.8, color='#3b75af', label='matched')
    if missed:
        axes.plot(missed, [0.0] * len(missed), 'x', color='#c44e52',
                  label=f'dropped or partial ({len(missed)})')
    axes.set_xlabel('input frame')
    axes.set_ylabel('latency (ms)')
    axes.set_title('Per-frame latency')
    axes.legend(loc='upper right')
    timeline.savefig(out / 'latency_per_frame.png')
    return [out / 'latency_histogram.png', out / 'latency_per_frame.png']


def colorize_error(error: np.ndarray, max_error: float) -> np.ndarray:
    """(H, W) absolute error in metres -> (H, W, 3) uint8 (magma); NaN = black."""
    global _ERROR_LUT
    if _ERROR_LUT is None:
        from matplotlib import colormaps
        _ERROR_LUT = (colormaps['magma'](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
    valid = np.isfinite(error)
    index = np.clip(np.where(valid, error, 0) / max(max_error, 1e-6) * 255, 0, 255).astype(np.uint8)
    rgb = _ERROR_LUT[index]
    rgb[~valid] = 0
    return rgb


# Panels are six tiles; wider images are shrunk so that a figure stays a few hundred KB.
MAX_TILE_WIDTH = 400


def _titled(tile: np.ndarray, title: str) -> np.ndarray:
    tile = np.ascontiguousarray(tile)
    if tile.shape[1] > MAX_TILE_WIDTH:
        height = round(tile.shape[0] * MAX_TILE_WIDTH / tile.shape[1])
        tile = cv2.resize(tile, (MAX_TILE_WIDTH, height), interpolation=cv2.INTER_AREA)
    height = max(12, tile.shape[0] // 16)
    scale = height / 30.0
    bar = np.full((height + 6, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, title, (4, height), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0),
                max(1, round(scale * 1.5)), cv2.LINE_AA)
    return np.concatenate([bar, tile], axis=0)


def _far_end(depth: np.ndarray | None) -> float | None:
    """99th percentile of the valid depths (metres), the far end of a colour scale."""
    if depth is None:
        return None
    valid = depth[np.isfinite(depth) & (depth > 0)]
    return float(np.percentile(valid, 99)) if valid.size else None


def write_sample_figure(path: Path, frame, depth: np.ndarray | None, labels: np.ndarray | None,
                        num_classes: int) -> Path:
    """Panels in rows of three: input | labels GT | labels predicted | depth GT | depth
    predicted | |depth error|, leaving out what the frame has no ground truth for (and what
    the network does not predict); depth colour maps share one scale."""
    image, gt_depth = frame.image, frame.depth
    far = _far_end(gt_depth) if gt_depth is not None else _far_end(depth)
    tiles = [_titled(image, 'input')]
    if frame.labels is not None:
        tiles.append(_titled(overlay_labels(image, frame.labels, num_classes), 'labels GT'))
    if labels is not None:
        tiles.append(_titled(overlay_labels(image, labels, num_classes), 'labels predicted'))
    if gt_depth is not None:
        tiles.append(_titled(colorize_depth(gt_depth, far), 'depth GT'))
    if depth is not None:
        tiles.append(_titled(colorize_depth(depth, far), 'depth predicted'))
    if gt_depth is not None and depth is not None:
        error = np.abs(depth - gt_depth)
        finite = error[np.isfinite(error)]
        max_error = float(np.percentile(finite, 99)) if finite.size else 1.0
        tiles.append(_titled(colorize_error(error, max_error),
                             f'|depth error| 0-{max_error:.1f} m'))
    tiles += [np.full_like(tiles[0], 255)] * (-len(tiles) % 3)  # white: nothing there
    rows = [np.concatenate(tiles[start:start + 3], axis=1) for start in range(0, len(tiles), 3)]
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
    return path
