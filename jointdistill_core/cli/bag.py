"""`jointdistill bag VERB`: camera bags for replay and evaluation.

The ROS-free verbs: make, from-dataset, info and eval. `eval --outputs` (offline) runs here;
`eval --model` (live) starts the perception node through the `live_eval` hook, which the full
command (jointdistill_ros.cli, which also adds `play`) sets and this ROS-free CLI leaves None.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from jointdistill_core.bags.codec import COMPRESSIONS
from jointdistill_core.bags.layout import (
    DEFAULT_FRAME_TIMEOUT_S,
    DEFAULT_SLOP_NS,
    STORAGES,
    BagError,
    CameraTopics,
    OutputTopics,
)
from jointdistill_core.cli import CliError
from jointdistill_core.cli.arguments import (
    device_name,
    non_negative_float,
    positive_float,
    positive_int,
    size_argument,
    topic_name,
)


def add_camera_topic_options(parser: argparse.ArgumentParser) -> None:
    """The --*-topic options naming the camera topics of a bag."""
    defaults = CameraTopics()
    parser.add_argument('--image-topic', default=defaults.image, type=topic_name,
                        help='input image: sensor_msgs/Image, or CompressedImage (JPEG, PNG); '
                             'TOPIC/compressed when the bag has only that')
    parser.add_argument('--camera-info-topic', default=defaults.camera_info, type=topic_name)
    parser.add_argument('--depth-gt-topic', default=defaults.depth_gt, type=topic_name,
                        help='ground-truth depth: 32FC1 metres, 16UC1 mm, or compressedDepth '
                             'PNG (TOPIC/compressedDepth when the bag has only that)')
    parser.add_argument('--labels-gt-topic', default=defaults.labels_gt, type=topic_name,
                        help='ground-truth labels (mono8, 255 void)')


def camera_topics(args: argparse.Namespace) -> CameraTopics:
    """CameraTopics from the --*-topic options."""
    return CameraTopics(args.image_topic, args.camera_info_topic, args.depth_gt_topic,
                        args.labels_gt_topic)


def _make(args: argparse.Namespace) -> int:
    from jointdistill_core.bags.make import make_synthetic_bag
    height, width = args.size
    try:
        path = make_synthetic_bag(args.out, args.frames, height, width, args.rate, args.storage,
                                  args.seed, args.force, camera_topics(args),
                                  compression=args.compressed)
    except BagError as error:
        raise CliError(str(error)) from None
    images = f'{args.compressed} CompressedImage' if args.compressed else 'raw images'
    print(f'wrote {path} ({args.frames} frames, {width}x{height}, {args.rate:g} Hz, '
          f'{args.storage}, {images})')
    return 0


def _from_dataset(args: argparse.Namespace) -> int:
    from jointdistill_core.bags.make import dataset_to_bag
    try:
        path = dataset_to_bag(args.data, args.split, args.out, args.rate, args.storage, args.size,
                              args.frames, args.force, camera_topics(args))
    except (BagError, ValueError, FileNotFoundError) as error:
        raise CliError(str(error)) from None
    print(f'wrote {path}')
    return 0


def _info(args: argparse.Namespace) -> int:
    from jointdistill_core.bags.reader import bag_topics, open_bag
    try:
        topics = bag_topics(args.bag)
        with open_bag(args.bag) as reader:
            start, duration, count = reader.start_time, reader.duration, reader.message_count
    except BagError as error:
        raise CliError(str(error)) from None
    print(f'bag:      {args.bag}\nmessages: {count}\nstart:    {start / 1e9:.9f} s\n'
          f'duration: {duration / 1e9:.3f} s')
    width = max(len(topic) for topic in topics) if topics else 0
    for topic, (msgtype, messages) in sorted(topics.items()):
        print(f'  {topic:<{width}}  {msgtype:<28} {messages:>7} msgs')
    return 0


LIVE_EVAL_NEEDS_ROS = (
    'live evaluation (without --outputs) runs the ROS perception node: use the full '
    'jointdistill command of jointdistill_ros (`jointdistill` or `python -m jointdistill_ros`); '
    'this ROS-free CLI evaluates recorded outputs only (--outputs)')
LIVE_ONLY_OPTIONS = ('record', 'realtime', 'rate', 'params_file', 'frame_timeout')


def _eval_model(model: Path | None) -> tuple[Path, int]:
    """The model (default: the shipped student) and its class count; CliError if unusable."""
    from jointdistill_core.inference import model_num_classes
    from jointdistill_core.shipped import default_model_path
    model = model if model is not None else default_model_path()
    if not model.is_file() and not model.with_name(model.name + '.safetensors').is_file():
        raise CliError(f'--model: {model} does not exist' + (
            '' if model != default_model_path() else ' (the shipped student is not installed '
            'with this package: name a checkpoint or export with --model)'))
    try:
        num_classes = model_num_classes(model)
    except ValueError as error:
        raise CliError(f'--model: {error}') from None
    if num_classes is None:
        raise CliError(f'--model: {model} predicts no segmentation; bag eval scores networks '
                       'that predict depth and labels')
    return model, num_classes


def _eval(args: argparse.Namespace) -> int:
    live = args.outputs is None
    defaults = {'record': None, 'realtime': False, 'rate': None, 'params_file': None,
                'frame_timeout': None}
    if live and args.live_eval is None:
        raise CliError(LIVE_EVAL_NEEDS_ROS)
    if not live:
        given = [name for name in LIVE_ONLY_OPTIONS if getattr(args, name) != defaults[name]]
        if given:
            raise CliError(f"--{given[0].replace('_', '-')} applies to live evaluation only "
                           '(without --outputs)')
    if args.rate is not None and not args.realtime:
        raise CliError('--rate sets the speed of --realtime replay; the default lock-step '
                       'replay waits for the node instead')
    model, num_classes = _eval_model(args.model)
    outputs = OutputTopics(args.depth_topic, args.labels_topic)
    slop_ns = round(args.slop * 1e9)
    from jointdistill_core.bags.evaluation import format_summary, run_offline_eval
    try:
        if live:
            report = args.live_eval(
                args.bag, model, args.out, num_classes=num_classes, realtime=args.realtime,
                rate=args.rate or 1.0, topics=camera_topics(args), output_topics=outputs,
                record=args.record, device=args.device, params_file=args.params_file,
                frame_timeout_s=args.frame_timeout or DEFAULT_FRAME_TIMEOUT_S,
                slop_ns=slop_ns, force=args.force)
        else:
            report = run_offline_eval(args.bag, args.outputs, args.out, num_classes,
                                      camera_topics(args), outputs, force=args.force,
                                      slop_ns=slop_ns, run_info={'model': str(model)})
    except BagError as error:
        raise CliError(str(error)) from None
    print(format_summary(report))
    print(f'report: {Path(args.out) / "report.md"}')
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `bag` and its verbs to the subcommands."""
    bag = subparsers.add_parser('bag', help='make, inspect and evaluate rosbag2 camera bags',
                                description=__doc__.split('\n')[0])
    verbs = bag.add_subparsers(dest='bag_command', metavar='VERB', required=True)

    make = verbs.add_parser('make', help='synthetic scenes as a rosbag2 bag')
    make.add_argument('--out', required=True, type=Path, help='bag directory to create')
    make.add_argument('--frames', type=positive_int, default=150)
    make.add_argument('--size', type=size_argument(minimum=8), default=(480, 640),
                      help='HxW pixels (480x640)')
    make.add_argument('--rate', type=positive_float, default=15.0, help='frame rate in Hz')
    make.add_argument('--storage', choices=STORAGES, default='mcap')
    make.add_argument('--seed', type=int, default=None,
                      help='scene seed of frame 0 '
                           '(default: first seed of the synthetic test split)')
    make.add_argument('--compressed', choices=COMPRESSIONS, default=None,
                      help='write the camera image as sensor_msgs/CompressedImage on '
                           'IMAGE_TOPIC/compressed, as image_transport does (ground truth stays '
                           'lossless)')
    make.add_argument('--force', action='store_true', help='replace an existing bag')
    add_camera_topic_options(make)
    make.set_defaults(handler=_make)

    convert = verbs.add_parser('from-dataset', help='a dataset split as a rosbag2 bag')
    convert.add_argument('--data', required=True, help="dataset spec, e.g. 'nyuv2:/data/nyu'")
    convert.add_argument('--split', default='val')
    convert.add_argument('--out', required=True, type=Path)
    convert.add_argument('--rate', type=positive_float, default=15.0, help='frame rate in Hz')
    convert.add_argument('--storage', choices=STORAGES, default='mcap')
    convert.add_argument('--size', type=size_argument(minimum=8), default=None,
                         help='resize to HxW pixels')
    convert.add_argument('--frames', type=positive_int, default=None, help='first N frames only')
    convert.add_argument('--force', action='store_true', help='replace an existing bag')
    add_camera_topic_options(convert)
    convert.set_defaults(handler=_from_dataset)

    info = verbs.add_parser('info', help='topics, types and counts of a bag')
    info.add_argument('bag', type=Path)
    info.set_defaults(handler=_info)

    evaluate = verbs.add_parser(
        'eval', help='metrics, latency and figures of the perception node on a bag (live) or '
                     'on recorded outputs (offline)',
        description='Live (default): start the perception node, replay the bag into it and '
                    'score its outputs; lock-step replay evaluates every frame, --realtime '
                    'replays at the bag\'s timing. Offline (--outputs): score recorded outputs.')
    evaluate.add_argument('--bag', required=True, type=Path,
                          help='input camera bag (ground truth optional)')
    evaluate.add_argument('--model', type=Path, default=None,
                          help='checkpoint or export the node runs (live) or that produced '
                               '--outputs; its class count is used (default: the shipped '
                               'student)')
    evaluate.add_argument('--outputs', type=Path, default=None,
                          help="offline: bag of the node's recorded output topics")
    evaluate.add_argument('--out', required=True, type=Path, help='report directory')
    evaluate.add_argument('--device', default='auto', type=device_name,
                          help="live: the node's device: auto, cpu or cuda (default: auto)")
    evaluate.add_argument('--realtime', action='store_true',
                          help="live: replay at the bag's timing (scaled by --rate): latency "
                               'and drops under real load, instead of lock-step')
    evaluate.add_argument('--rate', type=positive_float, default=None,
                          help='--realtime replay speed factor (default 1)')
    evaluate.add_argument('--frame-timeout', type=positive_float, default=None,
                          help='lock-step: seconds to wait for the outputs of a frame before '
                               f'the next one (default {DEFAULT_FRAME_TIMEOUT_S:g})')
    evaluate.add_argument('--params-file', type=Path, default=None,
                          help='live: node parameters (ROS YAML like config/jointdistill.yaml); '
                               'model_path, device, topics and transport come from this command')
    evaluate.add_argument('--slop', type=non_negative_float, default=DEFAULT_SLOP_NS / 1e9,
                          help='seconds: ground truth and camera_info match the image with the '
                               'nearest header stamp within this (default '
                               f'{DEFAULT_SLOP_NS / 1e9:g})')
    evaluate.add_argument('--record', type=Path, default=None,
                          help='live: also write the received outputs into this mcap bag')
    evaluate.add_argument('--force', action='store_true', help='write into a non-empty --out')
    defaults = OutputTopics()
    evaluate.add_argument('--depth-topic', default=defaults.depth, type=topic_name,
                          help="the node's depth output")
    evaluate.add_argument('--labels-topic', default=defaults.labels, type=topic_name,
                          help="the node's label output")
    add_camera_topic_options(evaluate)
    evaluate.set_defaults(handler=_eval, live_eval=None)
