"""The lint gate: ruff (configuration in ruff.toml) finds nothing in the repository."""
from __future__ import annotations

import subprocess
import sys

from conftest import REPO_ROOT


def test_ruff_finds_no_violation():
    # `python -m ruff`: the ruff of the environment running the tests (requirements-test.txt).
    command = [sys.executable, '-m', 'ruff', 'check', '--no-cache', '--output-format', 'concise',
               '.']
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, ('ruff found violations (fix them or, for a rule that does '
                                    'not fit, change ruff.toml with the reason):\n'
                                    + result.stdout + result.stderr)
