"""Checkpoints: weights as safetensors plus a JSON config, written atomically, never pickled.

A checkpoint with stem X is two files:
  X.safetensors  the model's state_dict (safetensors: a JSON header plus raw tensor bytes;
                 loading it runs no code, unlike a pickle).
  X.json         {"format": "jointdistill-checkpoint", "version": 1, "model": <spec>,
                  "input_size": [H, W], "weights_sha256": <hex of X.safetensors>,
                  "extra": {...}}
Each file is written to a temporary file in the same folder, fsynced, then renamed over the
final name, so a crash never leaves a half-written file under that name. The weights are
written first and the JSON records their SHA-256, so a pair torn by a crash between the two
renames is detected at load instead of silently mixing two checkpoints.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save
from torch import nn

from jointdistill_core.models.factory import ModelSpecError, build_model

CHECKPOINT_FORMAT = 'jointdistill-checkpoint'
CHECKPOINT_VERSION = 1
DEFAULT_INPUT_SIZE = (256, 512)
WEIGHTS_SUFFIX = '.safetensors'
CONFIG_SUFFIX = '.json'


class CheckpointError(ValueError):
    """A checkpoint cannot be loaded; the message names the file and what is wrong."""


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` so that `path` holds either its old content or all of `data`.

    Writes a temporary file in the same folder, fsyncs it, renames it over `path`, then
    fsyncs the folder so the rename itself survives a power loss.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        os.chmod(temp_name, _file_mode(path))
        with os.fdopen(handle, 'wb') as temp_file:
            temp_file.write(data)
            temp_file.flush()
            os.fsync(temp_file.fileno())
        os.replace(temp_name, path)
    except BaseException:
        if os.path.exists(temp_name):
            os.unlink(temp_name)
        raise
    _fsync_directory(path.parent)


def _file_mode(path: Path) -> int:
    """The mode a plain open() would give: the old file's, else 0o666 minus the umask."""
    if path.exists():
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_save_tensors(path: str | Path, tensors: dict[str, torch.Tensor],
                        metadata: dict[str, str] | None = None) -> bytes:
    """Save named tensors as safetensors at `path`, atomically. Returns the bytes written.

    Tensors are made contiguous CPU copies, so views and tensors sharing storage are fine.
    """
    plain = {name: tensor.detach().to('cpu').contiguous().clone()
             for name, tensor in tensors.items()}
    data = safetensors_save(plain, metadata=metadata)
    atomic_write_bytes(path, data)
    return data


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """(X.safetensors, X.json) for X, X.safetensors or X.json."""
    path = Path(path)
    if path.suffix in (WEIGHTS_SUFFIX, CONFIG_SUFFIX):
        path = path.with_suffix('')
    return Path(f'{path}{WEIGHTS_SUFFIX}'), Path(f'{path}{CONFIG_SUFFIX}')


def unwrap_model(model: nn.Module) -> nn.Module:
    """The network inside DistributedDataParallel / DataParallel / torch.compile wrappers,
    whose state_dict keys carry a 'module.' or '_orig_mod.' prefix the bare network lacks."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, '_orig_mod') and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def save_checkpoint(path: str | Path, model: nn.Module, extra: dict | None = None) -> Path:
    """Write X.safetensors and X.json for `model` (which must have a `spec`; DDP,
    DataParallel and torch.compile wrappers are unwrapped first).

    extra: JSON-able data kept under "extra" (metrics, step, config...); its 'input_size'
    entry, when present, becomes the top-level "input_size" [H, W] (default 256x512).
    Returns the path of the .safetensors file.
    """
    weights_path, config_path = checkpoint_paths(path)
    model = unwrap_model(model)
    spec = getattr(model, 'spec', None)
    if not isinstance(spec, dict) or 'arch' not in spec:
        raise CheckpointError(f'{weights_path}: {type(model).__name__} has no spec with an '
                              "'arch'; only networks built by jointdistill_core.models can be "
                              'saved')
    extra = dict(extra or {})
    input_size = [int(v) for v in extra.pop('input_size', DEFAULT_INPUT_SIZE)]
    if len(input_size) != 2 or any(v <= 0 or v % 32 for v in input_size):
        raise CheckpointError(f'{config_path}: input_size must be [H, W], multiples of 32, '
                              f'got {input_size}')
    config = {'format': CHECKPOINT_FORMAT, 'version': CHECKPOINT_VERSION, 'model': spec,
              'input_size': input_size}
    try:  # before writing anything, so bad extra data loses no previous checkpoint
        json.dumps(extra)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f'{config_path}: extra is not JSON-serialisable: {error}') from error
    data = atomic_save_tensors(weights_path, model.state_dict(), metadata={'format': 'pt'})
    config['weights_sha256'] = hashlib.sha256(data).hexdigest()
    config['extra'] = extra
    atomic_write_bytes(config_path, (json.dumps(config, indent=2) + '\n').encode())
    return weights_path


def read_checkpoint_config(path: str | Path) -> dict:
    """The validated JSON config of the checkpoint at `path` (X, X.safetensors or X.json)."""
    _, config_path = checkpoint_paths(path)
    if not config_path.is_file():
        raise CheckpointError(f'{config_path}: checkpoint config not found (a checkpoint is '
                              'X.safetensors plus X.json)')
    try:
        config = json.loads(config_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f'{config_path}: not valid JSON ({error})') from error
    if not isinstance(config, dict) or config.get('format') != CHECKPOINT_FORMAT:
        raise CheckpointError(f'{config_path}: not a jointdistill checkpoint config '
                              f'("format" must be "{CHECKPOINT_FORMAT}")')
    if config.get('version') != CHECKPOINT_VERSION:
        raise CheckpointError(f'{config_path}: unsupported checkpoint version '
                              f'{config.get("version")!r} (this code reads {CHECKPOINT_VERSION})')
    if not isinstance(config.get('model'), dict):
        raise CheckpointError(f'{config_path}: missing "model" spec')
    size = config.get('input_size')
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0
                                                             for v in size)):
        raise CheckpointError(f'{config_path}: "input_size" must be [H, W] positive integers, '
                              f'got {size!r}')
    return config


def read_checkpoint_tensors(weights_path: str | Path,
                            expected_sha256: str | None = None) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file, parsed by safetensors (never unpickled)."""
    weights_path = Path(weights_path)
    if not weights_path.is_file():
        raise CheckpointError(f'{weights_path}: checkpoint weights not found')
    data = weights_path.read_bytes()
    if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256:
        raise CheckpointError(f'{weights_path}: SHA-256 differs from the one recorded in its '
                              '.json: the two files do not belong to the same checkpoint')
    try:
        return safetensors_load(data)
    except Exception as error:  # safetensors raises SafetensorError, ValueError, ...
        raise CheckpointError(f'{weights_path}: not a valid safetensors file ({error}); '
                              'pickled checkpoints are refused on purpose') from error


def _check_state_dict(weights_path: Path, model: nn.Module,
                      tensors: dict[str, torch.Tensor]) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    mismatched = [f'{name} {tuple(tensors[name].shape)} vs model {tuple(expected[name].shape)}'
                  for name in sorted(set(expected) & set(tensors))
                  if tensors[name].shape != expected[name].shape]
    problems = []
    for label, names in (('missing keys', missing), ('unexpected keys', unexpected),
                         ('shape mismatches', mismatched)):
        if names:
            shown = ', '.join(names[:5]) + (f' (+{len(names) - 5} more)' if len(names) > 5 else '')
            problems.append(f'{label}: {shown}')
    if problems:
        raise CheckpointError(f'{weights_path}: weights do not match the architecture in its '
                              f'.json ({"; ".join(problems)})')


def load_checkpoint(path: str | Path, device: str | torch.device = 'cpu'
                    ) -> tuple[nn.Module, dict]:
    """(model in eval mode on `device`, config dict) from X, X.safetensors or X.json."""
    weights_path, config_path = checkpoint_paths(path)
    if not weights_path.is_file():
        raise CheckpointError(f'{weights_path}: checkpoint weights not found')
    config = read_checkpoint_config(path)
    try:
        model = build_model(config['model'])
    except ModelSpecError as error:
        raise CheckpointError(f'{config_path}: {error}') from error
    tensors = read_checkpoint_tensors(weights_path, config.get('weights_sha256'))
    _check_state_dict(weights_path, model, tensors)
    model.load_state_dict(tensors, strict=True)
    return model.to(device).eval(), config
