"""JointDistill core: models, data, distillation, metrics, inference. Never imports rclpy."""

__version__ = '0.1.0'
