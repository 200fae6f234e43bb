"""The resume state: one safetensors file whose header metadata holds the JSON part.

Nested Python structures (optimizer and method state dicts, RNG states) are split into
tensors (stored as safetensors) and a JSON skeleton that refers to them by key. One file
means the tensors and the JSON can never be out of step, and writing it through a temporary
file plus rename makes it atomic. Nothing is ever unpickled.
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import torch

STATE_KEY = 'jointdistill_resume_state'
FORMAT_VERSION = 1


def pack(value: Any, tensors: dict[str, torch.Tensor], path: str = 's') -> Any:
    """JSON-able skeleton of `value`; its tensors and arrays are moved into `tensors`."""
    if isinstance(value, torch.Tensor):
        tensors[path] = value.detach().cpu().contiguous().clone()
        return {'__tensor__': path}
    if isinstance(value, np.ndarray):
        tensors[path] = torch.from_numpy(np.ascontiguousarray(value).copy())
        return {'__ndarray__': path}
    if isinstance(value, dict):
        if all(isinstance(key, str) for key in value):
            return {'__dict__': {key: pack(item, tensors, f'{path}.{key}')
                                 for key, item in value.items()}}
        return {'__items__': [[pack(key, tensors, f'{path}.k{i}'),
                               pack(item, tensors, f'{path}.{i}')]
                              for i, (key, item) in enumerate(value.items())]}
    if isinstance(value, tuple):
        return {'__tuple__': [pack(item, tensors, f'{path}.{i}') for i, item in enumerate(value)]}
    if isinstance(value, list):
        return [pack(item, tensors, f'{path}.{i}') for i, item in enumerate(value)]
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f'cannot store a {type(value).__name__} at {path} in the resume state')


def unpack(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of `pack`."""
    if isinstance(skeleton, list):
        return [unpack(item, tensors) for item in skeleton]
    if not isinstance(skeleton, dict):
        return skeleton
    if '__tensor__' in skeleton:
        return tensors[skeleton['__tensor__']]
    if '__ndarray__' in skeleton:
        return tensors[skeleton['__ndarray__']].numpy()
    if '__dict__' in skeleton:
        return {key: unpack(item, tensors) for key, item in skeleton['__dict__'].items()}
    if '__items__' in skeleton:
        return {unpack(key, tensors): unpack(item, tensors) for key, item in skeleton['__items__']}
    if '__tuple__' in skeleton:
        return tuple(unpack(item, tensors) for item in skeleton['__tuple__'])
    raise ValueError(f'unknown entry in resume state: {sorted(skeleton)}')


def save_state(path: str | Path, state: dict) -> None:
    """Write `state` (nested dicts/lists of tensors, arrays and JSON scalars) atomically."""
    from jointdistill_core.checkpoint import atomic_write_bytes
    tensors: dict[str, torch.Tensor] = {}
    skeleton = pack(state, tensors)
    metadata = {STATE_KEY: json.dumps({'version': FORMAT_VERSION, 'state': skeleton})}
    atomic_write_bytes(Path(path), safetensors.torch.save(tensors, metadata=metadata))


def load_state(path: str | Path) -> dict:
    """The state saved by `save_state` (FileNotFoundError or ValueError naming `path`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'resume state not found: {path}')
    try:
        with safetensors.safe_open(str(path), framework='pt') as reader:
            metadata = reader.metadata() or {}
            tensors = {key: reader.get_tensor(key) for key in reader.keys()}
    except Exception as error:  # safetensors raises its own error types for corrupt files
        raise ValueError(f'{path}: not a readable safetensors file: {error}') from None
    if STATE_KEY not in metadata:
        raise ValueError(f'{path}: not a jointdistill resume state (no {STATE_KEY} metadata)')
    header = json.loads(metadata[STATE_KEY])
    if header.get('version') != FORMAT_VERSION:
        raise ValueError(f'{path}: resume state version {header.get("version")} '
                         f'is not {FORMAT_VERSION}')
    return unpack(header['state'], tensors)


def capture_rng() -> dict:
    """Every random number generator the training step may touch."""
    state = {
        'torch': torch.get_rng_state(),
        'numpy': np.random.get_state(),
        'python': random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    """Restore the torch, numpy and Python random states captured by `capture_rng`."""
    torch.set_rng_state(state['torch'])
    kind, keys, position, has_gauss, cached = state['numpy']
    np.random.set_state((kind, np.asarray(keys, np.uint32), position, has_gauss, cached))
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state['cuda']))
