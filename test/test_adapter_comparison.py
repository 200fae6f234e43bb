"""The adapter-vs-built-in comparison's statistics (benchmarks/adapter_comparison.py): means,
sample standard deviations and paired differences, by hand."""
from __future__ import annotations

import pytest

from benchmarks.adapter_comparison import METRICS, markdown, summarize


def test_summary_is_mean_sample_sd_and_paired_difference():
    def run(value: float) -> dict[str, float]:
        return dict.fromkeys(METRICS, value)
    results = {'builtin': {0: run(0.2), 1: run(0.4), 2: run(0.6)},
               'adapted': {0: run(0.3), 1: run(0.4), 2: run(0.8)}}
    summary = summarize(results)
    assert summary['seeds'] == [0, 1, 2]
    assert summary['paths']['builtin']['miou'] == pytest.approx({'mean': 0.4, 'std': 0.2})
    # adapted: mean 0.5, deviations -0.2, -0.1, 0.3 -> sd sqrt(0.14 / 2)
    assert summary['paths']['adapted']['rmse']['std'] == pytest.approx(0.07 ** 0.5)
    # differences 0.1, 0, 0.2 -> mean 0.1, sd 0.1
    assert summary['paired_difference']['abs_rel'] == pytest.approx({'mean': 0.1, 'std': 0.1})
    table = markdown(results, summary, 'cmd')
    assert '| builtin | mean ± sd | 40.00 ± 20.00 |' in table  # miou in percent
    assert ('| adapted - builtin | paired mean ± sd | 10.00 ± 10.00 | 10.00 ± 10.00 | '
            '0.1000 ± 0.1000 |') in table
