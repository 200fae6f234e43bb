"""Side-by-side measurements and pictures of a study: Predictor latency, parameter counts,
the teacher-weight trajectories of JointDistill, and the qualitative comparison."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

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


@torch.no_grad()
def predict_frames(path: str, images: torch.Tensor) -> tuple[np.ndarray | None,
                                                              np.ndarray | None]:
    """(labels (N, H, W) or None, depth (N, H, W) metres or None) of a checkpoint on
    images (N, 3, H, W) in [0, 1], computed as the evaluation computes them."""
    from jointdistill_core.checkpoint import load_checkpoint
    from jointdistill_core.training.evaluate import predict_batch
    model, _ = load_checkpoint(path, 'cpu')
    model.eval()
    labels, depth = predict_batch(model, images)
    return (None if labels is None else labels.numpy(),
            None if depth is None else depth.numpy())


def plot_qualitative(samples: list[dict], columns: dict[str, tuple[np.ndarray | None,
                                                                   np.ndarray | None]],
                     num_classes: int, path: Path) -> None:
    """PNG grid, two rows per frame (depth colour map above label colours); columns: the
    input (image, and the ground-truth labels over it), the ground truth, then each model.
    columns = {title: (labels (N, H, W) or None, depth (N, H, W) metres or None)}; one depth
    scale (the ground truth's 99th percentile, metres) for every panel."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from jointdistill_core.visualize import colorize_depth, colorize_labels, overlay_labels
    gt_depth = np.stack([sample['depth'][0].numpy() for sample in samples])
    valid = gt_depth[(gt_depth > 0) & np.isfinite(gt_depth)]
    max_depth = float(np.percentile(valid, 99)) if valid.size else None
    titles = ['input', 'ground truth', *columns]
    height, width = gt_depth.shape[-2:]
    blank = np.full((height, width, 3), 255, np.uint8)
    figure, axes = plt.subplots(2 * len(samples), len(titles), squeeze=False,
                                figsize=(1.6 * len(titles) * width / height,
                                         1.7 * 2 * len(samples)))
    for frame, sample in enumerate(samples):
        image = (sample['image'].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
        gt_labels = sample['labels'].numpy()
        cells = [(image, overlay_labels(image, gt_labels, num_classes)),
                 (colorize_depth(gt_depth[frame], max_depth),
                  colorize_labels(gt_labels, num_classes))]
        for labels, depth in columns.values():
            cells.append((colorize_depth(depth[frame], max_depth) if depth is not None else blank,
                          colorize_labels(labels[frame], num_classes) if labels is not None
                          else blank))
        for column, pictures in enumerate(cells):
            for row, picture in enumerate(pictures):
                axis = axes[2 * frame + row, column]
                axis.imshow(picture)
                axis.set_xticks([])
                axis.set_yticks([])
                if frame == 0 and row == 0:
                    axis.set_title(titles[column], fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
