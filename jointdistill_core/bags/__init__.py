"""ROS-free rosbag2 tools (pure-Python `rosbags`): write camera bags, read them back, and
evaluate recorded perception outputs. Nothing here imports rclpy."""
from jointdistill_core.bags.layout import (
                                           DEFAULT_START_NS,
                                           FRAME_ID,
                                           BagError,
                                           CameraTopics,
                                           OutputTopics,
                                           frame_stamp_ns,
)

__all__ = ['DEFAULT_START_NS', 'FRAME_ID', 'BagError', 'CameraTopics', 'OutputTopics',
           'frame_stamp_ns']
