"""The main job (`make demo`): synthetic bag -> perception node (shipped student, Fast DDS
large-image profile) -> live replay -> evaluation report and a summary table."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from jointdistill_core.bags import codec
from jointdistill_core.bags.evaluation import format_summary
from jointdistill_core.bags.layout import IMAGE_TYPE, BagError, CameraTopics
from jointdistill_core.bags.make import make_synthetic_bag
from jointdistill_core.bags.reader import bag_topics, iter_raw
from jointdistill_core.shipped import default_model_path

DEMO_FRAMES = 150
DEMO_SIZE = (480, 640)  # (H, W) pixels
DEMO_RATE_HZ = 15.0


def bag_is_reusable(bag: Path, frames: int, size: tuple[int, int], rate_hz: float) -> bool:
    """True when `bag` is a readable camera bag with `frames` frames of `size` at `rate_hz`."""
    topics = CameraTopics()
    try:
        available = bag_topics(bag)
        layout = (topics.image, topics.camera_info, topics.depth_gt, topics.labels_gt)
        if any(available.get(topic, ('', 0))[1] != frames for topic in layout):
            return False
        stamps = []
        for message in iter_raw(bag, [topics.image]):
            if not stamps:
                first = codec.deserialize(message.data, IMAGE_TYPE)
                if (first.height, first.width) != tuple(size):
                    return False
            stamps.append(codec.header_stamp_ns(message.data))
    except BagError:
        return False
    if len(stamps) < 2:
        return len(stamps) == frames
    period_ns = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
    return abs(period_ns - 1e9 / rate_hz) < 1e3


def run_demo(out: str | Path = 'runs/demo', frames: int = DEMO_FRAMES,
             size: tuple[int, int] = DEMO_SIZE, rate_hz: float = DEMO_RATE_HZ,
             model: str | Path | None = None, device: str = 'auto',
             progress: bool = True) -> dict[str, Any]:
    """Make (or reuse) OUT/bag, replay it live (realtime, the camera's own rate) through the
    node, write OUT/report.* and print the summary. model: checkpoint or export; None = the
    shipped student."""
    from jointdistill_core.inference import model_num_classes
    from jointdistill_ros.bag_eval import run_live_eval
    out = Path(out)
    model = Path(model) if model is not None else default_model_path()
    if not model.is_file():
        raise BagError(f'model {model} not found (the shipped student lives in models/; '
                       'pass --model to use another checkpoint)')
    try:
        num_classes = model_num_classes(model)
    except ValueError as error:
        raise BagError(str(error)) from None
    bag = out / 'bag'
    if bag_is_reusable(bag, frames, size, rate_hz):
        print(f'reusing {bag} ({frames} frames, {size[1]}x{size[0]}, {rate_hz:g} Hz)')
    else:
        make_synthetic_bag(bag, frames, size[0], size[1], rate_hz, 'mcap', force=True,
                           progress=progress)
    report = run_live_eval(bag, model, out, num_classes, realtime=True, device=device,
                           force=True, progress=progress)
    print(f'\nJointDistill demo: {frames} frames {size[1]}x{size[0]} at {rate_hz:g} Hz, '
          f'model {model.name}, device {device}')
    print(format_summary(report))
    print(f'report: {out / "report.md"} (figures and report.json beside it)')
    return report
