"""ROS 2 side of JointDistill-ROS: thin rclpy nodes around jointdistill_core.

Modules: ``image_codec`` (sensor_msgs/Image and CompressedImage <-> numpy, no cv_bridge),
``pointcloud`` (PointCloud2 x, y, z, rgb from numpy), ``qos`` (QoS from parameters and
readable incompatible-QoS logs), the perception node, the bag player and live bag
evaluation, the demo, and ``cli`` (the full ``jointdistill`` command: the core's ROS-free
subcommands plus ``bag play``, live ``bag eval --model`` and ``demo``). Importing this
package pulls in rclpy message types; the ROS-free library is ``jointdistill_core``.
"""
