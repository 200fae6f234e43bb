"""One device rule for training, evaluation and the Predictor (jointdistill_core.device)."""
from __future__ import annotations

import warnings

import pytest
import torch

from jointdistill_core.device import DeviceUnavailableError, check_device_name, resolve_device

# One index past the last CUDA device: absent on every machine, with or without a GPU.
ABSENT_CUDA = f'cuda:{torch.cuda.device_count()}'


@pytest.mark.parametrize('name', ['auto', 'cpu', 'cuda', 'cuda:0', 'cuda:12'])
def test_accepted_device_names(name):
    assert check_device_name(name) == name


@pytest.mark.parametrize('name', ['tpu', 'CPU', 'cuda:', 'cuda:x', 'cuda:-1', '', 'mps', None])
def test_refused_device_names_say_what_is_accepted(name):
    with pytest.raises(ValueError, match=r"device must be 'auto', 'cpu' or 'cuda\[:N\]'"):
        check_device_name(name)
    with pytest.raises(ValueError):
        resolve_device(name)


def test_auto_and_cpu_never_warn():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert resolve_device('cpu') == torch.device('cpu')
        assert resolve_device('auto').type == ('cuda' if torch.cuda.is_available() else 'cpu')


def test_a_missing_cuda_device_is_an_error_unless_a_fallback_is_allowed():
    with pytest.raises(DeviceUnavailableError, match=f"'{ABSENT_CUDA}' requested"):
        resolve_device(ABSENT_CUDA)
    with pytest.warns(RuntimeWarning, match='falling back to CPU'):
        assert resolve_device(ABSENT_CUDA, fallback=True) == torch.device('cpu')


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_a_present_cuda_device_is_used_as_named():
    assert resolve_device('cuda:0') == torch.device('cuda:0')
