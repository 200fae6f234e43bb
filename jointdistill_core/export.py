"""Export a network to ONNX or TorchScript for deployment without the Python model code.

The exported graph is the BatchNorm-folded network at a fixed input size (1, 3, H, W),
float RGB in [0, 1] (normalisation is inside), with outputs in this order, as present:
  depth       (1, 1, H, W) metres (for a network with a canonical camera: the canonical
              camera's; metres = depth * f / canonical_focal_px, f the focal length in pixels
              of the exported input size, see jointdistill_core.canonical)
  seg_logits  (1, C, H, W)
A JSON sidecar PATH.json (`ExportSidecar`, read by `Predictor.from_exported`) records the
input size, class count, max depth, canonical focal length, output names and the source
checkpoint. Both files are written to temporary names and renamed into place; an existing
output is only replaced with force.
"""
from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from jointdistill_core.checkpoint import atomic_write_bytes
from jointdistill_core.models.blocks import fuse_conv_bn

EXPORT_SIDECAR_FORMAT = 'jointdistill-export'
FORMATS = ('onnx', 'torchscript')
ONNX_OPSET = 17


class ExportError(ValueError):
    """The export cannot be written; the message names the file or setting at fault."""


@dataclass(frozen=True)
class ExportSidecar:
    """The JSON sidecar PATH.json next to an exported model (format version 1).

    backend: 'onnx' or 'torchscript'. input_size: (H, W) pixels of the fixed input
    (1, 3, H, W). outputs: output names in graph order ('depth', 'seg_logits').
    num_classes: classes of seg_logits, None for a depth-only network (stored as 0 in the file,
    as version 1 defines). max_depth: metres, None for a segmentation-only network.
    canonical_focal_px: the canonical camera's focal length (pixels) of a network predicting
    canonical depth, None for metric depth. model: the network's spec; source_checkpoint: the
    checkpoint it came from; opset: the ONNX opset (None for TorchScript).
    """

    backend: str
    input_size: tuple[int, int]
    outputs: tuple[str, ...]
    num_classes: int | None
    max_depth: float | None
    canonical_focal_px: float | None = None
    model: dict[str, Any] | None = None
    source_checkpoint: str | None = None
    opset: int | None = None

    def to_json(self) -> str:
        """The file's text."""
        meta = {'format': EXPORT_SIDECAR_FORMAT, 'version': 1, 'backend': self.backend,
                'input_size': list(self.input_size), 'input_name': 'image',
                'outputs': list(self.outputs), 'num_classes': self.num_classes or 0,
                'max_depth': self.max_depth, 'canonical_focal_px': self.canonical_focal_px,
                'model': self.model, 'source_checkpoint': self.source_checkpoint,
                'opset': self.opset}
        return json.dumps(meta, indent=2) + '\n'

    @classmethod
    def read(cls, model_path: str | Path) -> ExportSidecar:
        """The sidecar of the exported model at `model_path`, validated; ValueError names the
        file and the key at fault."""
        path = Path(model_path)
        sidecar = Path(f'{path}.json')
        if not path.is_file():
            raise ValueError(f'{path}: exported model not found')
        if not sidecar.is_file():
            raise ValueError(f'{sidecar}: sidecar of the exported model not found (written by '
                             '`jointdistill export` next to the model)')
        try:
            meta = json.loads(sidecar.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f'{sidecar}: not valid JSON ({error})') from error
        if not isinstance(meta, dict) or meta.get('format') != EXPORT_SIDECAR_FORMAT:
            raise ValueError(f'{sidecar}: "format" must be "{EXPORT_SIDECAR_FORMAT}"')
        for key in ('backend', 'input_size', 'num_classes', 'max_depth', 'outputs'):
            if key not in meta:
                raise ValueError(f'{sidecar}: missing key "{key}"')
        if meta['backend'] not in FORMATS:
            raise ValueError(f'{sidecar}: "backend" must be "onnx" or "torchscript", '
                             f'got {meta["backend"]!r}')
        size = meta['input_size']
        if not (isinstance(size, list) and len(size) == 2
                and all(isinstance(v, int) and v > 0 and v % 32 == 0 for v in size)):
            raise ValueError(f'{sidecar}: input_size must be (H, W) with positive multiples of '
                             f'32, got {size!r}')
        return cls(backend=meta['backend'], input_size=(size[0], size[1]),
                   outputs=tuple(meta['outputs']), num_classes=meta['num_classes'] or None,
                   max_depth=meta['max_depth'],
                   canonical_focal_px=meta.get('canonical_focal_px'), model=meta.get('model'),
                   source_checkpoint=meta.get('source_checkpoint'), opset=meta.get('opset'))


class _ExportWrapper(nn.Module):
    """ModelOutput -> a plain tuple (depth, seg_logits), which ONNX and tracing need."""

    def __init__(self, model: nn.Module, output_names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.output_names = output_names

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(x)
        return tuple(getattr(out, name) for name in self.output_names)


def output_names_of(model: nn.Module, size: tuple[int, int]) -> list[str]:
    """Names of the non-empty outputs ('depth', 'seg_logits') the model produces."""
    with torch.no_grad():
        out = model(torch.zeros(1, 3, *size))
    return [name for name in ('depth', 'seg_logits') if getattr(out, name) is not None]


def export_model(model: nn.Module, fmt: str, size: tuple[int, int], out: str | Path,
                 force: bool = False, source: str | None = None) -> Path:
    """Export `model` (left untouched; a fused CPU copy is exported) to `out`.

    fmt: 'onnx' (opset 17) or 'torchscript' (traced). size: (H, W) pixels, multiples of 32.
    Returns the path of the sidecar JSON.
    """
    out = Path(out)
    sidecar = Path(f'{out}.json')
    if fmt not in FORMATS:
        raise ExportError(f'format must be one of {FORMATS}, got {fmt!r}')
    if len(size) != 2 or any(v <= 0 or v % 32 for v in size):
        raise ExportError(f'size must be HxW with positive multiples of 32, got {size}')
    for existing in (out, sidecar):
        if existing.exists() and not force:
            raise ExportError(f'{existing} exists; pass --force to overwrite it')
    data, names = serialize_model(model, fmt, size)
    atomic_write_bytes(out, data)
    meta = ExportSidecar(backend=fmt, input_size=(int(size[0]), int(size[1])),
                         outputs=tuple(names), num_classes=getattr(model, 'num_classes', None),
                         max_depth=getattr(model, 'max_depth', None),
                         canonical_focal_px=getattr(model, 'canonical_focal_px', None),
                         model=getattr(model, 'spec', None), source_checkpoint=source,
                         opset=ONNX_OPSET if fmt == 'onnx' else None)
    atomic_write_bytes(sidecar, meta.to_json().encode())
    return sidecar


def serialize_model(model: nn.Module, fmt: str, size: tuple[int, int],
                    dynamic_batch: bool = False) -> tuple[bytes, list[str]]:
    """(file content, output names) of the BatchNorm-folded `model` exported in memory as
    'onnx' or 'torchscript' at input (1, 3, H, W), size = (H, W). `model` is untouched.
    dynamic_batch: an ONNX graph whose first dimension is any batch size N (the Predictor's
    in-memory networks, which run several cameras' frames at once)."""
    fused = fuse_conv_bn(model).to('cpu').eval()
    names = output_names_of(fused, size)
    wrapper = _ExportWrapper(fused, names).eval()
    example = torch.rand(1, 3, *size)
    if fmt == 'onnx':
        return _onnx_bytes(wrapper, example, names, dynamic_batch), names
    return _torchscript_bytes(wrapper, example), names


def _onnx_bytes(wrapper: nn.Module, example: torch.Tensor, names: list[str],
                dynamic_batch: bool) -> bytes:
    buffer = io.BytesIO()
    batch_axes = {name: {0: 'batch'} for name in ['image', *names]} if dynamic_batch else None
    # The TorchScript-based exporter (deprecated upstream): the dynamo one needs onnxscript,
    # which is not installed here.
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        torch.onnx.export(wrapper, (example,), buffer, dynamo=False, opset_version=ONNX_OPSET,
                          input_names=['image'], output_names=names, do_constant_folding=True,
                          dynamic_axes=batch_axes)
    return buffer.getvalue()


def _torchscript_bytes(wrapper: nn.Module, example: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():  # deprecated upstream, still deployed
        warnings.simplefilter('ignore', DeprecationWarning)
        traced = torch.jit.trace(wrapper, (example,), strict=False)
        torch.jit.save(traced, buffer)
    return buffer.getvalue()
