"""Short soak (the 60 s, 100 Hz 1080p version is benchmarks/soak.py): a 100 Hz 640x480 camera
in its own process floods a real node for 5 s.

Asserted: newest-frame-only accounting is exact (received = processed + dropped + rejected
once the camera stops, with frames actually dropped: the node was overloaded), processed
stamps strictly increase, memory stays bounded. Timing bounds are sanity limits only (a
shared CI machine); the real figures are the benchmark's.
"""
from __future__ import annotations

import pytest

from benchmarks.soak import run_soak
from jointdistill_ros.node_process import fastdds_profile_path, node_environment
from node_helpers import save_tiny_student

pytestmark = pytest.mark.ros

SIZE, RATE_HZ, DURATION_S = (480, 640), 100.0, 5.0


def test_short_soak_keeps_only_the_newest_frame_and_bounded_memory(ros_env, tmp_path):
    checkpoint = save_tiny_student(tmp_path / 'student', input_size=(256, 512))
    env = node_environment(ros_env, fastdds_profile_path())
    env.setdefault('OMP_NUM_THREADS', '1')
    result = run_soak(checkpoint, SIZE, RATE_HZ, DURATION_S, env, idle_frames=3,
                      idle_rate_hz=2.0, progress=False, log_path=tmp_path / 'node.log')
    print(result)
    assert result.stamps_strictly_increasing
    assert result.accounting_exact, result
    assert result.processed >= 5 and result.dropped > 0, result
    assert result.received > 0.5 * result.camera_sent, result  # the Fast DDS profile works
    assert result.outputs_seen <= result.processed
    assert result.memory_growth_mb < 100, result.rss_samples
    # Sanity only: a queue of stale frames would age frames by many inference times.
    assert result.age_at_start_ms_median < 1000, result
    assert result.load_latency_ms_median < 10 * result.idle_latency_ms_median + 1000, result
