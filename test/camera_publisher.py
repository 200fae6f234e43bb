"""A stand-in camera for transport tests: publishes rgb8 frames best effort at a fixed rate.

Run as its own process (so samples cross a process boundary, as from a camera driver):
    python test/camera_publisher.py --topic image --frames 60 --rate 30 --width 640 --height 480
It waits until a subscriber has matched, publishes the frames with increasing stamps, prints
`sent N` and exits 0 (exit 3 when no subscriber matched within --wait seconds).
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--topic', default='image')
    parser.add_argument('--frames', type=int, default=60)
    parser.add_argument('--rate', type=float, default=30.0, help='frames per second')
    parser.add_argument('--width', type=int, default=640, help='pixels')
    parser.add_argument('--height', type=int, default=480, help='pixels')
    parser.add_argument('--frame-id', default='camera_optical_frame')
    parser.add_argument('--wait', type=float, default=60.0,
                        help='seconds to wait for a subscriber')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(sys.argv[1:] if argv is None else argv)
    rclpy.init()
    node = Node('test_camera')
    publisher = node.create_publisher(Image, args.topic, qos_profile_sensor_data)
    message = Image(height=args.height, width=args.width, encoding='rgb8', is_bigendian=0,
                    step=args.width * 3)
    message.header.frame_id = args.frame_id
    rng = np.random.default_rng(0)
    message.data = rng.integers(0, 256, (args.height, args.width, 3), np.uint8).tobytes()
    deadline = time.monotonic() + args.wait
    while publisher.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            print('no subscriber matched', flush=True)
            return 3
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(0.5)  # let the subscriber side finish matching too
    period = 1.0 / args.rate
    start = time.monotonic()
    for index in range(args.frames):
        time.sleep(max(0.0, start + index * period - time.monotonic()))
        message.header.stamp = node.get_clock().now().to_msg()
        publisher.publish(message)
    time.sleep(0.5)  # leave time for the last samples to be delivered before teardown
    print(f'sent {args.frames}', flush=True)
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
