"""Predictor: an RGB numpy image in, metric depth and class labels out, at the image's size.

Used by the ROS node and by the evaluators, so all see exactly the same pre- and
post-processing.

Input size follows the camera. `input_size` (H, W) is the model input for images of its
own aspect ratio and the pixel budget for all others: an image of another aspect is resized
to the multiples of 32 nearest to that aspect with about the same number of pixels
(`model_input_size`), so the network sees undistorted shapes (a 1242x375 KITTI frame
becomes 640x192, not a 512x256 squeeze of 2.4x across and 1.5x down) at the same cost.
The small remaining anisotropy (rounding to 32) is carried by K. Predictors of exported
files have one fixed input size (chosen at export) and stretch other aspects.
Resizing: cv2 INTER_AREA when shrinking, INTER_LINEAR when enlarging; outputs are resized
back to the image's size: depth bilinearly, labels as the arg-max at model resolution
resized with nearest neighbour (class ids are never blended).

Metric depth: a network with a canonical camera (jointdistill_core.canonical) predicts the
depth a camera of focal length f_c would see; `predict(image, K)` converts it with the
focal length of K scaled to the model input. Without K the camera is assumed to have a
horizontal field of view of DEFAULT_HFOV_DEG. With the camera's height above the ground
(`predict(image, K, camera_height=...)`, a robot's URDF knows it) the depth is rescaled so
that the ground the network segments lies at that height (jointdistill_core.ground_scale).

Backends: 'torch' (a checkpoint or an nn.Module; BatchNorm folded into the convolutions,
`torch.inference_mode`, fp16 autocast on CUDA, optional channels_last); 'onnxruntime' (a
file written by `jointdistill export`, or a checkpoint/module exported to ONNX in memory at
load); 'torchscript' (a file written by `jointdistill export`). Exported files carry a JSON
sidecar with input size, class count, max depth and output names. `Predictor.from_path`
picks the loader and backend for any model file.

Several cameras: `predict_batch` runs the frames of several images in one forward pass per
model input size (cameras of one aspect ratio share a batch); `predict` is its one-image case.
"""
from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from jointdistill_core.canonical import focal_length_px
from jointdistill_core.checkpoint import load_checkpoint, read_checkpoint_config
from jointdistill_core.classes import FLAT
from jointdistill_core.device import DeviceUnavailableError, resolve_device
from jointdistill_core.export import ExportSidecar, serialize_model
from jointdistill_core.geometry import default_intrinsics, scale_intrinsics
from jointdistill_core.ground_scale import ground_scale
from jointdistill_core.models.blocks import fuse_conv_bn
from jointdistill_core.models.factory import build_model

PRECISIONS = ('auto', 'fp32', 'fp16')
# Backends for networks given as a checkpoint or module: eager PyTorch, or the network
# exported to ONNX in memory and run by onnxruntime (often faster on CPUs).
MODEL_BACKENDS = ('torch', 'onnxruntime')

# Checkpoint or exported file: the suffixes `Predictor.from_path` runs as exported files.
EXPORTED_SUFFIXES = ('.onnx', '.pt', '.ts', '.torchscript')
# What `from_path` accepts as backend: 'auto' = onnxruntime unless the network runs on CUDA.
BACKENDS = ('auto', *MODEL_BACKENDS)

# (N, 3, H, W) float32 in [0, 1] -> (depth (N, H, W) float32 metres | None,
#                                     labels (N, H, W) uint8 | None), both at model resolution.
Runner = Callable[[np.ndarray], tuple[np.ndarray | None, np.ndarray | None]]


@dataclass(frozen=True)
class Prediction:
    """What `Predictor.predict` returns, both at the input image's resolution (H, W).

    depth: float32 metres along the optical axis, or None for a segmentation-only network.
    labels: uint8 class ids, or None for a depth-only network (no segmentation).
    ground_scale: the factor the depth was multiplied by to put the segmented ground at the
    camera's height (jointdistill_core.ground_scale); None when no camera height was given
    or no ground plane fitted (the network's own scale).
    """

    depth: np.ndarray | None
    labels: np.ndarray | None
    ground_scale: float | None = None


def _check_input_size(input_size: tuple[int, int] | list[int], source: str) -> tuple[int, int]:
    size = tuple(int(v) for v in input_size)
    if len(size) != 2 or any(v <= 0 or v % 32 for v in size):
        raise ValueError(f'{source}: input_size must be (H, W) with positive multiples of 32, '
                         f'got {tuple(input_size)}')
    return size  # type: ignore[return-value]


def model_input_size(image_size: tuple[int, int], budget: tuple[int, int]) -> tuple[int, int]:
    """(h, w) multiples of 32 for an image of image_size (H, W) pixels with about
    budget[0] * budget[1] pixels in all: h is the multiple of 32 nearest to the height at
    that area and the image's aspect, then w the multiple of 32 nearest to h * W / H."""
    height, width = image_size
    aspect = width / height
    model_h = max(32, round(math.sqrt(budget[0] * budget[1] / aspect) / 32) * 32)
    model_w = max(32, round(model_h * aspect / 32) * 32)
    return model_h, model_w


def _labels_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) logits -> (N, H, W) uint8 class ids (the first of tied maxima)."""
    # max(dim=1).indices, not argmax(dim=1): same first-maximum indices, but argmax over a
    # non-innermost dim of (1, 7, 256, 512) took 21 ms of CPU against 4 ms (torch 2.13).
    return logits.max(dim=1).indices.to(torch.uint8)


def _checked_threads(num_threads: int) -> int:
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 0:
        raise ValueError(f'num_threads must be an integer >= 0 (0 = default), got {num_threads!r}')
    return num_threads


def set_torch_threads(num_threads: int) -> None:
    """torch's intra-op thread count for this whole process; 0 leaves torch's default."""
    if _checked_threads(num_threads) > 0:
        torch.set_num_threads(num_threads)


class _TorchRunner:
    """A fused nn.Module under inference_mode, optionally fp16 autocast / channels_last."""

    def __init__(self, model: nn.Module, device: torch.device, fp16: bool,
                 channels_last: bool) -> None:
        self.model = fuse_conv_bn(model).to(device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.device = device
        self.fp16 = fp16

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device, non_blocking=True)
            x = x.contiguous(memory_format=self.memory_format)
            with torch.autocast(device_type='cuda', dtype=torch.float16, enabled=self.fp16):
                out = self.model(x)
            depth = out.depth[:, 0].float().cpu().numpy() if out.depth is not None else None
            labels = _labels_from_logits(out.seg_logits).cpu().numpy() \
                if out.seg_logits is not None else None
        return depth, labels


def _split_exported(outputs: list, names: list[str]) -> tuple[np.ndarray | None, np.ndarray | None]:
    by_name = dict(zip(names, outputs))
    depth = by_name.get('depth')
    logits = by_name.get('seg_logits')
    depth_map = np.asarray(depth, dtype=np.float32)[:, 0] if depth is not None else None
    labels = _labels_from_logits(torch.from_numpy(np.asarray(logits))).numpy() \
        if logits is not None else None
    return depth_map, labels


class _OnnxRunner:
    """`model` is an ONNX file path or the ONNX bytes themselves; `source` names it in errors."""

    def __init__(self, model: Path | bytes, source: str, device: torch.device,
                 output_names: list[str], num_threads: int = 0) -> None:
        import onnxruntime as ort
        providers: list = ['CPUExecutionProvider']
        if device.type == 'cuda':
            providers.insert(0, ('CUDAExecutionProvider', {'device_id': device.index or 0}))
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads  # 0 = one per physical core
        # Idle worker threads sleep instead of spinning. With one of 2 cores busy elsewhere,
        # spinning took 31 ms (45 ms CPU) per student forward against 27 ms (30 ms CPU);
        # only on an idle machine is it faster (15 against 17 ms). A robot's CPU is shared
        # with the camera driver and DDS (docs/performance.md).
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        try:
            self.session = ort.InferenceSession(model if isinstance(model, bytes) else str(model),
                                                options, providers=providers)
        except Exception as error:  # onnxruntime's own exception types
            raise ValueError(f'{source}: not a loadable ONNX model ({error})'.split('\n')[0]
                             ) from error
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        # Files written by `jointdistill export` take one image (1, 3, H, W); networks exported
        # in memory by the Predictor take any batch (a symbolic first dimension).
        self.one_at_a_time = model_input.shape[0] == 1
        self.output_names = output_names

    def on_cuda(self) -> bool:
        return 'CUDAExecutionProvider' in self.session.get_providers()

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        if self.one_at_a_time and len(batch) > 1:
            depths, labels = zip(*(self(batch[index:index + 1]) for index in range(len(batch))))
            return (None if depths[0] is None else np.concatenate(depths),
                    None if labels[0] is None else np.concatenate(labels))
        return _split_exported(self.session.run(self.output_names, {self.input_name: batch}),
                               self.output_names)


class _TorchScriptRunner:
    def __init__(self, path: Path, device: torch.device, output_names: list[str]) -> None:
        try:
            with warnings.catch_warnings():  # TorchScript is deprecated upstream, still deployed
                warnings.simplefilter('ignore', DeprecationWarning)
                self.module = torch.jit.load(str(path), map_location=device).eval()
        except Exception as error:  # torch raises several types for a bad archive
            raise ValueError(f'{path}: not a loadable TorchScript file ({error})'.split('\n')[0]
                             ) from error
        self.device = device
        self.output_names = output_names

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        with torch.inference_mode():
            outputs = self.module(torch.from_numpy(batch).to(self.device))
            if isinstance(outputs, torch.Tensor):
                outputs = (outputs,)
            depth, labels = None, None
            for name, tensor in zip(self.output_names, outputs):
                if name == 'depth':
                    depth = tensor[:, 0].float().cpu().numpy()
                elif name == 'seg_logits':
                    labels = _labels_from_logits(tensor).cpu().numpy()
        return depth, labels


class Predictor:
    """Runs a network on HxWx3 uint8 RGB images, one (`predict`) or several (`predict_batch`).
    Build with a `from_*` constructor (`from_path` for any model file).

    Attributes: device (torch.device actually used), requested_device (as given),
    num_classes (None for a depth-only network), max_depth (metres, of the network's raw
    output; None for a segmentation-only network), canonical_focal_px (None for a network
    that predicts metric depth directly), input_size (H, W) of the model input in pixels
    for images of its aspect (the pixel budget for others, see the module docstring),
    follows_aspect (False for exported files), backend ('torch' | 'onnxruntime' |
    'torchscript'), precision ('fp32' | 'fp16'), and timings: milliseconds of the last
    `predict` or `predict_batch` ('preprocess_ms', 'forward_ms' (incl. copies to and from
    the device), 'postprocess_ms', 'total_ms').
    """

    def __init__(self, runner_for: Callable[[tuple[int, int]], Runner], *,
                 input_size: tuple[int, int], follows_aspect: bool, num_classes: int | None,
                 max_depth: float | None, canonical_focal_px: float | None,
                 device: torch.device, requested_device: str, backend: str,
                 precision: str) -> None:
        """runner_for(size) builds the runner for a model input size (H, W); it is called
        once per size (cached)."""
        if num_classes is not None and num_classes > 255:
            raise ValueError(f'Predictor: {num_classes} classes do not fit uint8 labels '
                             '(255 is reserved for void)')
        self._runner_for = runner_for
        self._runners: dict[tuple[int, int], Runner] = {}
        self.input_size = input_size
        self.follows_aspect = follows_aspect
        self.canonical_focal_px = canonical_focal_px
        self.num_classes = num_classes
        self.max_depth = max_depth
        self.device = device
        self.requested_device = requested_device
        self.backend = backend
        self.precision = precision
        self.timings: dict[str, float] = {}
        self._warm_up()

    # -- constructors -----------------------------------------------------------------------
    @classmethod
    def from_model(cls, model: nn.Module, input_size: tuple[int, int], device: str = 'auto',
                   precision: str = 'auto', strict_device: bool = False,
                   channels_last: bool = False, backend: str = 'torch',
                   num_threads: int = 0) -> Predictor:
        """From a network object (left untouched: a BatchNorm-folded copy is used).

        input_size: (H, W) model input in pixels, multiples of 32. precision: 'auto' (fp16
        on CUDA, fp32 on CPU), 'fp32', or 'fp16' (CUDA, torch backend only).
        channels_last: run convs in NHWC memory layout (torch backend only; same results).
        backend: 'torch' (eager PyTorch) or 'onnxruntime' (the network exported to ONNX in
        memory at load, then run by onnxruntime, fp32; about 1.7x faster for the student
        on this project's CPUs).
        num_threads: intra-op threads; 0 = the library's default. For 'torch' this sets
        torch's thread count for the whole process (torch has no per-model setting); for
        'onnxruntime' it applies to this model's session only.
        """
        size = _check_input_size(input_size, type(model).__name__)
        if backend not in MODEL_BACKENDS:
            raise ValueError(f'backend must be one of {MODEL_BACKENDS}, got {backend!r}')
        if precision not in PRECISIONS:
            raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
        _checked_threads(num_threads)
        resolved = resolve_device(device, fallback=not strict_device)
        if precision == 'fp16' and (resolved.type != 'cuda' or backend != 'torch'):
            raise ValueError("precision 'fp16' needs a CUDA device and the torch backend; "
                             "use 'fp32' or 'auto'")
        common = {'input_size': size, 'follows_aspect': True,
                  'num_classes': getattr(model, 'num_classes', None),
                  'max_depth': getattr(model, 'max_depth', None),
                  'canonical_focal_px': getattr(model, 'canonical_focal_px', None),
                  'requested_device': device}
        if backend == 'onnxruntime':
            if channels_last:
                raise ValueError('channels_last applies to the torch backend only')

            def onnx_runner(input_size: tuple[int, int]) -> Runner:
                onnx_bytes, names = serialize_model(model, 'onnx', input_size,
                                                    dynamic_batch=True)
                return _OnnxRunner(onnx_bytes, f'{type(model).__name__} (in-memory ONNX)',
                                   resolved, names, num_threads)

            first = onnx_runner(size)
            resolved = _onnx_device(first, resolved, strict_device, type(model).__name__)
            return cls(lambda s: first if s == size else onnx_runner(s), device=resolved,
                       backend='onnxruntime', precision='fp32', **common)
        use_fp16 = precision == 'fp16' or (precision == 'auto' and resolved.type == 'cuda')
        set_torch_threads(num_threads)
        runner = _TorchRunner(model, resolved, use_fp16, channels_last)
        return cls(lambda _: runner, device=resolved, backend='torch',
                   precision='fp16' if use_fp16 else 'fp32', **common)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = 'auto',
                        input_size: tuple[int, int] | None = None, precision: str = 'auto',
                        strict_device: bool = False, channels_last: bool = False,
                        backend: str = 'torch', num_threads: int = 0) -> Predictor:
        """From a checkpoint (X, X.safetensors or X.json). input_size defaults to the
        checkpoint's "input_size"; other arguments as in `from_model`. Raises
        CheckpointError for a bad checkpoint."""
        model, config = load_checkpoint(path, device='cpu')
        size = input_size if input_size is not None else config['input_size']
        return cls.from_model(model, _check_input_size(size, str(path)), device=device,
                              precision=precision, strict_device=strict_device,
                              channels_last=channels_last, backend=backend,
                              num_threads=num_threads)

    @classmethod
    def from_exported(cls, path: str | Path, device: str = 'auto',
                      strict_device: bool = False, num_threads: int = 0) -> Predictor:
        """From an ONNX or TorchScript file written by `jointdistill export`, with its sidecar
        PATH.json (input size, classes, max depth, output names). Always fp32. num_threads
        as in `from_model` (TorchScript files run on torch's process-wide threads)."""
        path = Path(path)
        meta = ExportSidecar.read(path)
        resolved = resolve_device(device, fallback=not strict_device)
        names = list(meta.outputs)
        if meta.backend == 'onnx':
            runner: Runner = _OnnxRunner(path, str(path), resolved, names,
                                         _checked_threads(num_threads))
            resolved = _onnx_device(runner, resolved, strict_device, str(path))
            backend = 'onnxruntime'
        else:
            set_torch_threads(num_threads)
            runner = _TorchScriptRunner(path, resolved, names)
            backend = 'torchscript'
        return cls(lambda _: runner, input_size=meta.input_size, follows_aspect=False,
                   num_classes=meta.num_classes, max_depth=meta.max_depth,
                   canonical_focal_px=meta.canonical_focal_px,
                   device=resolved, requested_device=device, backend=backend, precision='fp32')

    @classmethod
    def from_path(cls, path: str | Path, device: str = 'auto', backend: str = 'auto',
                  input_size: tuple[int, int] | None = None, precision: str = 'auto',
                  strict_device: bool = False, num_threads: int = 0) -> Predictor:
        """From any model file: the one loader the node, `bag eval`, `evaluate`, the demo and
        the benchmarks share.

        An exported file (EXPORTED_SUFFIXES: .onnx, .pt, .ts, .torchscript, written by
        `jointdistill export`) runs in its own runtime at its fixed input size, fp32; anything
        else is a checkpoint (X, X.safetensors or X.json). backend (checkpoints only):
        'torch', 'onnxruntime' or 'auto' (`resolve_backend`); eager PyTorch on the CPU runs in
        channels_last (NHWC: 1.2x faster for the student, docs/performance.md; unmeasured on
        GPUs, so left off there). input_size: model input (H, W) for a checkpoint (None = its
        own). Raises DeviceUnavailableError (strict device) and ValueError (CheckpointError
        among them) naming the file (missing, unreadable) or argument at fault.
        """
        path = Path(path)
        if backend not in BACKENDS:
            raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
        if is_exported(path):
            if input_size is not None:
                raise ValueError(f'{path}: an exported file has a fixed input size '
                                 '(its sidecar); export the checkpoint again at the size you '
                                 'want')
            return cls.from_exported(path, device=device, strict_device=strict_device,
                                     num_threads=num_threads)
        chosen = resolve_backend(device, backend)
        return cls.from_checkpoint(path, device=device, input_size=input_size,
                                   precision=precision, strict_device=strict_device,
                                   backend=chosen, num_threads=num_threads,
                                   channels_last=chosen == 'torch' and not _runs_on_cuda(device))

    # -- inference --------------------------------------------------------------------------
    def _runner(self, size: tuple[int, int]) -> Runner:
        if size not in self._runners:
            self._runners[size] = self._runner_for(size)
        return self._runners[size]

    def _warm_up(self, size: tuple[int, int] | None = None) -> None:
        """First calls allocate memory and pick kernels; do it at load, not on frame one."""
        height, width = size or self.input_size
        blank = np.zeros((1, 3, height, width), dtype=np.float32)
        for _ in range(3 if self.device.type == 'cuda' else 1):
            self._runner((height, width))(blank)

    def input_size_for(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """The model input (h, w) pixels used for images of image_size (H, W)."""
        if not self.follows_aspect:
            return self.input_size
        return model_input_size(image_size, self.input_size)

    def prepare(self, image_size: tuple[int, int]) -> None:
        """Build and warm up the network for images of image_size (H, W) before the first
        frame arrives (the node calls it when it learns the camera's resolution)."""
        self._warm_up(self.input_size_for(image_size))

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (1, 3, h, w) float32 in [0, 1] at the model input size
        `input_size_for(H, W)`."""
        if not isinstance(image, np.ndarray):
            raise ValueError(f'image must be a numpy array, got {type(image).__name__}')
        if image.dtype != np.uint8:
            raise ValueError(f'image must be uint8 RGB, got dtype {image.dtype}')
        if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
            raise ValueError(f'image must have shape (H, W, 3), got {image.shape}')
        height, width = self.input_size_for(image.shape[:2])
        if image.shape[:2] != (height, width):
            shrinking = image.shape[0] * image.shape[1] > height * width
            image = cv2.resize(image, (width, height),
                               interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        batch = np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)
        batch *= 1.0 / 255.0
        return batch

    def metric_scale(self, image_size: tuple[int, int], K: np.ndarray | None = None) -> float:
        """Factor from the network's depth output to metres for an image of image_size
        (H, W) with intrinsics K (3, 3) (None: DEFAULT_HFOV_DEG): f_model / f_c, with
        f_model the focal length scaled to the model input; 1 for a metric network."""
        if self.canonical_focal_px is None:
            return 1.0
        if K is None:
            K = default_intrinsics(image_size[0], image_size[1])
        model_K = scale_intrinsics(K, image_size, self.input_size_for(image_size))
        return focal_length_px(model_K) / self.canonical_focal_px

    def predict(self, image: np.ndarray, K: np.ndarray | None = None,
                camera_height: float | None = None, ground_class: int = FLAT) -> Prediction:
        """(H, W, 3) uint8 RGB -> Prediction: depth (H, W) float32 metres, labels (H, W) uint8
        ids.

        K: the image's (3, 3) intrinsics in pixels (CameraInfo's K); None assumes a
        horizontal field of view of DEFAULT_HFOV_DEG. Only a canonical-camera network's
        depth depends on it. camera_height: metres of the camera above the ground; when
        given, the depth is rescaled so the pixels segmented as ground_class lie on a plane
        at that height (`Prediction.ground_scale`; needs a network with both tasks). Both
        outputs at the image's resolution; a single-task network returns None for the task
        it lacks. Raises ValueError naming the shape or dtype of a bad image or K.
        """
        return self.predict_batch([image], [K], [camera_height], ground_class)[0]

    def predict_batch(self, images: Sequence[np.ndarray],
                      Ks: Sequence[np.ndarray | None] | None = None,
                      camera_heights: Sequence[float | None] | None = None,
                      ground_class: int = FLAT) -> list[Prediction]:
        """`predict` for several images (e.g. one per camera), in as few forward passes as
        their model input sizes allow: images whose `input_size_for` agrees (cameras of one
        aspect ratio) share one (N, 3, h, w) batch. Returns one Prediction per image, in order;
        the outputs equal those of `predict` on each image. `timings` covers the whole call.
        Ks, camera_heights: one value (or None) per image; None for all defaults."""
        Ks = [None] * len(images) if Ks is None else list(Ks)
        heights = [None] * len(images) if camera_heights is None else list(camera_heights)
        if len(Ks) != len(images) or len(heights) != len(images):
            raise ValueError(f'predict_batch: {len(images)} images but {len(Ks)} Ks and '
                             f'{len(heights)} camera heights')
        if any(height is not None for height in heights):
            self._check_ground_prior(heights, ground_class)
        start = time.perf_counter()
        inputs = [self.preprocess(image) for image in images]
        scales = [self.metric_scale(image.shape[:2], K) for image, K in zip(images, Ks)]
        groups: dict[tuple[int, int], list[int]] = {}
        for index, batch in enumerate(inputs):
            groups.setdefault(tuple(batch.shape[-2:]), []).append(index)
        forward_start = time.perf_counter()
        raw: list[tuple[np.ndarray | None, np.ndarray | None]] = [(None, None)] * len(images)
        for size, indices in groups.items():
            stacked = inputs[indices[0]] if len(indices) == 1 else \
                np.concatenate([inputs[index] for index in indices])
            depth, labels = self._runner(size)(stacked)
            for row, index in enumerate(indices):
                raw[index] = (None if depth is None else depth[row],
                              None if labels is None else labels[row])
        post_start = time.perf_counter()
        predictions = [_at_image_size(depth, labels, image.shape[:2], scale)
                       for (depth, labels), image, scale in zip(raw, images, scales)]
        predictions = [
            prediction if height is None else _on_ground(prediction, image, K, height,
                                                         ground_class)
            for prediction, image, K, height in zip(predictions, images, Ks, heights)]
        end = time.perf_counter()
        self.timings = {'preprocess_ms': (forward_start - start) * 1e3,
                        'forward_ms': (post_start - forward_start) * 1e3,
                        'postprocess_ms': (end - post_start) * 1e3,
                        'total_ms': (end - start) * 1e3}
        return predictions

    def _check_ground_prior(self, heights: list[float | None], ground_class: int) -> None:
        if self.num_classes is None or self.max_depth is None:
            raise ValueError('camera_height needs a network that predicts depth and '
                             'segmentation (the ground is found in its labels)')
        if not 0 <= ground_class < self.num_classes:
            raise ValueError(f'ground_class {ground_class} is not a class of this network '
                             f'({self.num_classes} classes)')
        for height in heights:
            if height is not None and not (math.isfinite(height) and height > 0):
                raise ValueError(f'camera_height must be > 0 metres, got {height}')

    @property
    def last_forward_ms(self) -> float | None:
        """Milliseconds of the last network forward (None before the first predict)."""
        return self.timings.get('forward_ms')


def is_exported(path: str | Path) -> bool:
    """Whether `Predictor.from_path` runs `path` as an exported file (by its suffix)."""
    return Path(path).suffix.lower() in EXPORTED_SUFFIXES


def resolve_backend(device: str, backend: str = 'auto') -> str:
    """The backend for a checkpoint: `backend` unless 'auto', which is onnxruntime (1.5-1.9x
    faster than eager PyTorch for the student on CPUs, docs/performance.md) unless the network
    will run on CUDA (device cuda[:N], or auto with CUDA present), where PyTorch runs it in
    fp16."""
    if backend != 'auto':
        return backend
    return 'torch' if _runs_on_cuda(device) else 'onnxruntime'


def _runs_on_cuda(device: str) -> bool:
    return device != 'cpu' and torch.cuda.is_available()


def model_num_classes(path: str | Path) -> int | None:
    """The segmentation class count of the model file at `path` (None: depth only), read
    from its checkpoint config or export sidecar without loading the weights."""
    if is_exported(path):
        return ExportSidecar.read(path).num_classes
    # The spec may leave num_classes to the architecture's default: build it (random weights).
    model = build_model(read_checkpoint_config(path)['model'])
    return getattr(model, 'num_classes', None)


def _on_ground(prediction: Prediction, image: np.ndarray, K: np.ndarray | None,
               camera_height: float, ground_class: int) -> Prediction:
    """The prediction with its depth rescaled so its ground lies at camera_height metres."""
    if K is None:
        K = default_intrinsics(*image.shape[:2])
    scale = ground_scale(prediction.depth, prediction.labels, np.asarray(K, np.float64),
                         camera_height, ground_class)
    if scale is None:
        return prediction
    return Prediction(prediction.depth * np.float32(scale), prediction.labels, scale)


def _at_image_size(depth: np.ndarray | None, labels: np.ndarray | None,
                   image_size: tuple[int, int], scale: float) -> Prediction:
    """Model-resolution outputs -> a Prediction at image_size (H, W): depth times the metric
    scale, resized bilinearly; labels resized with nearest neighbour."""
    out_size = (image_size[1], image_size[0])  # cv2 wants (width, height)
    if depth is not None:
        if scale != 1.0:
            depth = depth * np.float32(scale)
        if depth.shape != image_size:
            depth = cv2.resize(depth, out_size, interpolation=cv2.INTER_LINEAR)
    if labels is not None and labels.shape != image_size:
        labels = cv2.resize(labels, out_size, interpolation=cv2.INTER_NEAREST)
    return Prediction(depth, labels)


def _onnx_device(runner: _OnnxRunner, device: torch.device, strict_device: bool,
                 source: str) -> torch.device:
    """The device onnxruntime really uses: CUDA needs onnxruntime's CUDA provider too."""
    if device.type != 'cuda' or runner.on_cuda():
        return device
    message = f'{source}: onnxruntime has no CUDA execution provider on this machine'
    if strict_device:
        raise DeviceUnavailableError(message)
    warnings.warn(f'{message}; running on CPU', RuntimeWarning, stacklevel=3)
    return torch.device('cpu')
