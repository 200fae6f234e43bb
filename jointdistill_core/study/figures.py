"""Side-by-side measurements and pictures of a study: Predictor latency, parameter counts,
the teacher-weight trajectories of JointDistill, and the qualitative comparison."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

OMEGA_COLUMNS = ('method/omega/seg', 'method/omega/depth')


def measure_models(checkpoints: dict[str, str], size: tuple[int, int], repeats: int,
                   image: np.ndarray, device: str = 'auto') -> dict[str, dict]:
    """Parameters and median Predictor latency (ms, full `predict` of one (H, W, 3) uint8
    image at `size` = (H, W) pixels) of each checkpoint, measured in this one process in
    turn (round robin, so load changes hit all models alike). Returns {name: {'params',
    'latency_ms', 'device'}}."""
    from jointdistill_core.checkpoint import load_checkpoint
    from jointdistill_core.inference import Predictor
    from jointdistill_core.models.profile import count_parameters
    predictors, results = {}, {}
    for name, path in checkpoints.items():
        model, _ = load_checkpoint(path, 'cpu')
        results[name] = {'params': count_parameters(model)}
        predictors[name] = Predictor.from_model(model, size, device=device, precision='fp32')
    timings: dict[str, list[float]] = {name: [] for name in predictors}
    for _ in range(repeats):
        for name, predictor in predictors.items():
            predictor.predict(image)
            timings[name].append(predictor.timings['total_ms'])
    for name, predictor in predictors.items():
        results[name]['latency_ms'] = float(np.median(timings[name]))
        results[name]['device'] = str(predictor.device)
    return results


def read_weight_trajectory(csv_path: Path) -> dict[str, list[float]] | None:
    """{'step': [...], 'omega_seg': [...], 'omega_depth': [...]} from a trainer metrics.csv,
    or None when the run logged no teacher weights."""
    if not csv_path.is_file():
        return None
    steps, seg, depth = [], [], []
    with csv_path.open(newline='') as handle:
        reader = csv.DictReader(handle)
        if not all(column in (reader.fieldnames or []) for column in OMEGA_COLUMNS):
            return None
        for row in reader:
            if row[OMEGA_COLUMNS[0]] in ('', None):
                continue
            steps.append(int(float(row['step'])))
            seg.append(float(row[OMEGA_COLUMNS[0]]))
            depth.append(float(row[OMEGA_COLUMNS[1]]))
    return {'step': steps, 'omega_seg': seg, 'omega_depth': depth} if steps else None


def plot_weight_trajectories(trajectories: dict[int, dict[str, list[float]]], variant: str,
                             path: Path) -> None:
    """PNG: omega_seg and omega_depth over steps, one line per seed."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharex=True, sharey=True)
    for seed, trajectory in sorted(trajectories.items()):
        for axis, key in zip(axes, ('omega_seg', 'omega_depth')):
            axis.plot(trajectory['step'], trajectory[key], label=f'seed {seed}')
    for axis, title in zip(axes, ('segmentation teacher weight', 'depth teacher weight')):
        axis.set_title(f'{variant}: {title}')
        axis.set_xlabel('training step')
        axis.axhline(1.0, color='grey', linewidth=0.8, linestyle=':')
        axis.grid(alpha=0.3)
    axes[0].set_ylabel('omega (weights sum to 2)')
    axes[0].legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def predict_samples(path: str, samples: list[dict]
                    ) -> list[tuple[np.ndarray | None, np.ndarray | None]]:
    """(labels (H, W) or None, depth (H, W) metres or None) of a checkpoint on each sample,
    each frame at its own resolution through the Predictor with its K (as the ROS node),
    the checkpoint's input size as the pixel budget."""
    from jointdistill_core.inference import Predictor
    from jointdistill_core.training.evaluate import sample_rgb8
    predictor = Predictor.from_checkpoint(path, device='cpu', precision='fp32')
    outputs = []
    for sample in samples:
        prediction = predictor.predict(sample_rgb8(sample), sample['K'].double().numpy())
        outputs.append((prediction.labels, prediction.depth))
    return outputs


def _depth_scale(truth: np.ndarray, predictions: list[np.ndarray | None]) -> float:
    """Colour scale (metres) of one frame: the 99th percentile of its ground truth, or of
    the first prediction when the frame has none (e.g. CamVid)."""
    valid = truth[(truth > 0) & np.isfinite(truth)]
    if not valid.size:
        valid = next((depth for depth in predictions if depth is not None), np.ones(1))
    return float(np.percentile(valid, 99))


def plot_qualitative(frames: list[tuple[str, dict]],
                     columns: dict[str, list[tuple[np.ndarray | None, np.ndarray | None]]],
                     num_classes: int, path: Path) -> None:
    """PNG grid, two rows per frame (depth colour map above label colours); frames:
    [(row title, sample)], each at its own size; columns: the input (image, and the
    ground-truth labels over it), the ground truth, then {title: [(labels or None, depth or
    None) per frame]}. Depth of a frame shares one scale (metres, see `_depth_scale`);
    sparse ground truth (LiDAR) is grown to small patches so it can be seen."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from jointdistill_core.cli.evaluate import visible_sparse_depth
    from jointdistill_core.training.evaluate import sample_rgb8
    from jointdistill_core.visualize import colorize_depth, colorize_labels, overlay_labels
    titles = ['input', 'ground truth', *columns]
    height, width = frames[0][1]['image'].shape[-2:]
    figure, axes = plt.subplots(2 * len(frames), len(titles), squeeze=False,
                                figsize=(1.6 * len(titles) * width / height,
                                         1.7 * 2 * len(frames)))
    for index, (row_title, sample) in enumerate(frames):
        image = sample_rgb8(sample)
        truth_depth, truth_labels = sample['depth'][0].numpy(), sample['labels'].numpy()
        blank = np.full(image.shape, 255, np.uint8)
        scale = _depth_scale(truth_depth, [column[index][1] for column in columns.values()])
        has_depth, has_labels = bool((truth_depth > 0).any()), bool((truth_labels != 255).any())
        cells = [(image, overlay_labels(image, truth_labels, num_classes) if has_labels
                  else image),
                 (colorize_depth(visible_sparse_depth(truth_depth), scale) if has_depth
                  else blank, colorize_labels(truth_labels, num_classes) if has_labels
                  else blank)]
        for predictions in columns.values():
            labels, depth = predictions[index]
            cells.append((colorize_depth(depth, scale) if depth is not None else blank,
                          colorize_labels(labels, num_classes) if labels is not None
                          else blank))
        for column, pictures in enumerate(cells):
            for row, picture in enumerate(pictures):
                axis = axes[2 * index + row, column]
                axis.imshow(picture)
                axis.set_xticks([])
                axis.set_yticks([])
                if index == 0 and row == 0:
                    axis.set_title(titles[column], fontsize=8)
                if column == 0 and row == 0:
                    axis.set_ylabel(row_title, fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
