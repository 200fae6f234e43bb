"""`jointdistill bag VERB`: camera bags for replay and evaluation.

The ROS-free verbs: make, from-dataset, info and eval. `eval --outputs` (offline) runs here;
`eval --model` (live) starts the perception node through the `live_eval` hook, which the full
command (jointdistill_ros.cli, which also adds `play`) sets and this ROS-free CLI leaves None.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from jointdistill_core.bags.layout import STORAGES, BagError, CameraTopics, OutputTopics
from jointdistill_core.classes import DEFAULT_NUM_CLASSES
from jointdistill_core.cli import CliError
from jointdistill_core.cli.arguments import positive_float, positive_int, size_argument, topic_name


def add_camera_topic_options(parser: argparse.ArgumentParser) -> None:
    """The --*-topic options naming the camera topics of a bag."""
    defaults = CameraTopics()
    parser.add_argument('--image-topic', default=defaults.image, type=topic_name,
                        help='input image (rgb8/bgr8/mono8)')
    parser.add_argument('--camera-info-topic', default=defaults.camera_info, type=topic_name)
    parser.add_argument('--depth-gt-topic', default=defaults.depth_gt, type=topic_name,
                        help='ground-truth depth (32FC1 metres or 16UC1 mm)')
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
                                  args.seed, args.force, camera_topics(args))
    except BagError as error:
        raise CliError(str(error)) from None
    print(f'wrote {path} ({args.frames} frames, {width}x{height}, {args.rate:g} Hz, '
          f'{args.storage})')
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
    'live evaluation (--model) runs the ROS perception node: use the full jointdistill command '
    'of jointdistill_ros (`jointdistill` or `python -m jointdistill_ros`); this ROS-free CLI '
    'evaluates recorded outputs only (--outputs)')


def _eval(args: argparse.Namespace) -> int:
    live = args.model is not None
    if live == (args.outputs is not None):
        raise CliError('give exactly one of --model (live: run the node) or --outputs '
                       '(offline: a bag of recorded node outputs)')
    if live and args.live_eval is None:
        raise CliError(LIVE_EVAL_NEEDS_ROS)
    if not live and args.record is not None:
        raise CliError('--record applies to live evaluation only (--model)')
    outputs = OutputTopics(args.depth_topic, args.labels_topic)
    from jointdistill_core.bags.evaluation import format_summary, run_offline_eval
    try:
        if live:
            report = args.live_eval(args.bag, args.model, args.out, rate=args.rate,
                                    topics=camera_topics(args), output_topics=outputs,
                                    record=args.record, device=args.device,
                                    num_classes=args.num_classes, force=args.force)
        else:
            report = run_offline_eval(args.bag, args.outputs, args.out, camera_topics(args),
                                      outputs, num_classes=args.num_classes, force=args.force)
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

    evaluate = verbs.add_parser('eval', help='metrics, latency and figures of the perception node '
                                             'on a bag (live) or on recorded outputs (offline)')
    evaluate.add_argument('--bag', required=True, type=Path,
                          help='input camera bag with ground truth')
    evaluate.add_argument('--model', type=Path, default=None,
                          help='live: checkpoint for the perception node started by this command')
    evaluate.add_argument('--outputs', type=Path, default=None,
                          help="offline: bag of the node's recorded output topics")
    evaluate.add_argument('--out', required=True, type=Path, help='report directory')
    evaluate.add_argument('--rate', type=positive_float, default=1.0,
                          help='live replay speed factor')
    evaluate.add_argument('--device', default='cpu', help="live: the node's device (cpu, cuda)")
    evaluate.add_argument('--record', type=Path, default=None,
                          help='live: also write the received outputs into this mcap bag')
    evaluate.add_argument('--num-classes', type=positive_int, default=DEFAULT_NUM_CLASSES,
                          help='number of segmentation classes (7 = Cityscapes-7)')
    evaluate.add_argument('--force', action='store_true', help='write into a non-empty --out')
    defaults = OutputTopics()
    evaluate.add_argument('--depth-topic', default=defaults.depth, type=topic_name,
                          help="the node's depth output")
    evaluate.add_argument('--labels-topic', default=defaults.labels, type=topic_name,
                          help="the node's label output")
    add_camera_topic_options(evaluate)
    evaluate.set_defaults(handler=_eval, live_eval=None)
