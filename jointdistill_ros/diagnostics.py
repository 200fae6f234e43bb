"""Frame accounting for the perception node, its `/diagnostics` message and its rate-limited
warnings about bad input.

`FrameStats` (one per camera) is thread-safe: the subscription callbacks count received,
dropped and rejected frames while the inference worker records processed ones. Counters are
cumulative since the node was configured; timing statistics cover the window since the last
report.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header


@dataclass(frozen=True)
class StatsReport:
    """One diagnostics period. Times in milliseconds, rate in frames per second."""

    rate_hz: float
    processing_ms_mean: float
    processing_ms_p95: float
    latency_ms_mean: float
    window_frames: int
    window_rejected: int
    frames_received: int
    frames_processed: int
    frames_dropped: int
    frames_rejected: int
    camera_info_rejected: int = 0
    # With a camera height: frames of the window whose ground plane fitted, and the median
    # factor applied to their depth (NaN when none fitted).
    window_ground_fitted: int = 0
    ground_scale_median: float = float('nan')


class FrameStats:
    """Counters and per-window timings of the newest-frame-only pipeline."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Zero every counter and the timing window (on configure)."""
        with self._lock:
            self._received = self._processed = self._dropped = self._rejected = 0
            self._processing_ms: list[float] = []
            self._latency_ms: list[float] = []
            self._window_rejected = 0
            self._camera_info_rejected = 0
            self._ground_scales: list[float] = []

    def record_received(self, replaced_unprocessed: bool) -> None:
        """A message reached the subscription; `replaced_unprocessed` counts a drop."""
        with self._lock:
            self._received += 1
            self._dropped += int(replaced_unprocessed)

    def record_rejected(self) -> None:
        """A malformed message was skipped."""
        with self._lock:
            self._rejected += 1
            self._window_rejected += 1

    def record_camera_info_rejected(self) -> None:
        """An unusable CameraInfo (zero size, zero or non-finite focal length) was ignored."""
        with self._lock:
            self._camera_info_rejected += 1

    def record_processed(self, processing_ms: float, latency_ms: float) -> None:
        """A frame was published: its inference-to-publish time and header-to-publish latency."""
        with self._lock:
            self._processed += 1
            self._processing_ms.append(processing_ms)
            self._latency_ms.append(latency_ms)

    def record_ground_scale(self, scale: float | None) -> None:
        """A frame of a camera with a height: the ground factor applied (None: no ground)."""
        if scale is not None:
            with self._lock:
                self._ground_scales.append(scale)

    def report(self, window_s: float) -> StatsReport:
        """Statistics of the last `window_s` seconds; starts a new timing window."""
        with self._lock:
            processing = np.asarray(self._processing_ms, np.float64)
            latency = np.asarray(self._latency_ms, np.float64)
            window_rejected = self._window_rejected
            ground_scales = self._ground_scales
            self._processing_ms, self._latency_ms, self._window_rejected = [], [], 0
            self._ground_scales = []
            counts = (self._received, self._processed, self._dropped, self._rejected)
            camera_info_rejected = self._camera_info_rejected
        frames = len(processing)
        return StatsReport(
            rate_hz=frames / window_s if window_s > 0 else 0.0,
            processing_ms_mean=float(processing.mean()) if frames else float('nan'),
            processing_ms_p95=float(np.percentile(processing, 95)) if frames else float('nan'),
            latency_ms_mean=float(latency.mean()) if frames else float('nan'),
            window_frames=frames, window_rejected=window_rejected,
            frames_received=counts[0], frames_processed=counts[1],
            frames_dropped=counts[2], frames_rejected=counts[3],
            camera_info_rejected=camera_info_rejected,
            window_ground_fitted=len(ground_scales),
            ground_scale_median=float(np.median(ground_scales)) if ground_scales
            else float('nan'))


STATUS_NAME = 'jointdistill_perception: inference'


def status_name(camera: str = '') -> str:
    """The DiagnosticStatus name of a camera ('' = the node's single camera)."""
    return f'{STATUS_NAME} ({camera})' if camera else STATUS_NAME


def diagnostic_status(report: StatsReport, node_name: str, device: str, state: str,
                      camera: str = '', image_topic: str = '',
                      camera_height: float | None = None) -> DiagnosticStatus:
    """One camera's DiagnosticStatus (named `status_name(camera)`).

    Level OK while active and producing frames; WARN while active with no frame in the window,
    with malformed messages rejected in the window, or (camera_height set, metres) with no
    frame of the window whose ground plane fitted; OK (message says so) when not active.
    """
    status = DiagnosticStatus(name=status_name(camera), hardware_id=device or 'none')
    if state != 'active':
        status.level, status.message = DiagnosticStatus.OK, f'{state}: not processing'
    elif report.window_frames == 0:
        status.level, status.message = DiagnosticStatus.WARN, 'active: no frames in this period'
    elif report.window_rejected:
        status.level = DiagnosticStatus.WARN
        status.message = f'active: {report.window_rejected} malformed messages rejected'
    elif camera_height is not None and report.window_ground_fitted == 0:
        status.level = DiagnosticStatus.WARN
        status.message = 'active: no ground found, depth keeps the network\'s own scale'
    else:
        status.level, status.message = DiagnosticStatus.OK, 'active'
    values = {
        'node': node_name,
        'camera': camera,
        'image_topic': image_topic,
        'state': state,
        'device': device or 'none',
        'rate_hz': f'{report.rate_hz:.2f}',
        'processing_ms_mean': f'{report.processing_ms_mean:.2f}',
        'processing_ms_p95': f'{report.processing_ms_p95:.2f}',
        'latency_ms_mean': f'{report.latency_ms_mean:.2f}',
        'frames_received': str(report.frames_received),
        'frames_processed': str(report.frames_processed),
        'frames_dropped': str(report.frames_dropped),
        'frames_rejected': str(report.frames_rejected),
        'camera_info_rejected': str(report.camera_info_rejected),
    }
    if camera_height is not None:
        values.update({'camera_height_m': f'{camera_height:.3f}',
                       'ground_fitted_frames': str(report.window_ground_fitted),
                       'ground_scale_median': f'{report.ground_scale_median:.3f}'})
    status.values = [KeyValue(key=key, value=value) for key, value in values.items()]
    return status


def build_diagnostic_array(statuses: list[DiagnosticStatus], stamp) -> DiagnosticArray:
    """The `/diagnostics` message of the node: one status per camera."""
    return DiagnosticArray(header=Header(stamp=stamp), status=statuses)


def diagnostic_values(array: DiagnosticArray, name: str = STATUS_NAME) -> dict[str, str] | None:
    """The key/value pairs of the status called `name` in `array`, or None when absent."""
    for status in array.status:
        if status.name == name:
            return {pair.key: pair.value for pair in status.values}
    return None


class InputFaultLog:
    """Rate-limited warnings about bad input, throttled per kind of fault (e.g. 'image: step',
    'camera_info: K') so one flood of one kind never hides another kind. Thread-safe."""

    def __init__(self, warn: Callable[[str], None], period_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._warn, self._period_s, self._clock = warn, period_s, clock
        self._lock = threading.Lock()
        self._last_logged: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def report(self, kind: str, message: str) -> bool:
        """Log `message` unless `kind` was logged less than period_s ago; True when logged."""
        with self._lock:
            now = self._clock()
            last = self._last_logged.get(kind)
            if last is not None and now - last < self._period_s:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return False
            self._last_logged[kind] = now
            suppressed = self._suppressed.pop(kind, 0)
        if suppressed:
            message += f' ({suppressed} more of this kind in the last {self._period_s:g} s)'
        self._warn(message)
        return True
