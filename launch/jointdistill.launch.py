r"""Launch perception_node (a lifecycle node that configures and activates itself) and RViz.

    ros2 launch jointdistill_ros jointdistill.launch.py \
        image_topic:=/camera/color/image_raw camera_info_topic:=/camera/color/camera_info rviz:=true
    ros2 launch jointdistill_ros jointdistill.launch.py cameras:=front,rear transport:=compressed

With `cameras` one node serves several cameras through one network (their topics default to
<name>/image and <name>/camera_info, outputs under <name>/; a params file such as
config/cameras.yaml names other topics).

Every process started here gets FASTDDS_DEFAULT_PROFILES_FILE = the shipped Fast DDS profile
(32 MiB shared-memory segment); start the camera driver with the same variable so large
images cross processes without loss (docs/ros.md).
"""
import os

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.parameter_descriptions import ParameterValue

PACKAGE = 'jointdistill_ros'
RVIZ_PACKAGE = 'rviz2'


def _require_rviz(context):
    """Fail the launch before anything starts when rviz:=true and RViz is not installed (a
    failure after the node started would leave it running without its launch)."""
    try:
        get_package_share_directory(RVIZ_PACKAGE)
    except PackageNotFoundError:
        distro = os.environ.get('ROS_DISTRO', '<distro>')
        raise RuntimeError(
            f"rviz:=true, but RViz (package '{RVIZ_PACKAGE}') is not installed in this ROS "
            'environment; nothing was started. Install it (sudo apt install '
            f'ros-{distro}-rviz2) or launch without rviz:=true.') from None
    return []


def _perception_node(context):
    """The node, with model_path, device, transport, cameras and camera_height overriding
    params_file only when given."""
    overrides = {
        'autostart': True,
        'use_sim_time': LaunchConfiguration('use_sim_time').perform(context).lower() == 'true',
    }
    for name in ('model_path', 'device', 'transport'):
        value = LaunchConfiguration(name).perform(context)
        if value:
            overrides[name] = value
    height = LaunchConfiguration('camera_height').perform(context)
    if height:
        try:
            overrides['camera_height'] = float(height)
        except ValueError:
            raise ValueError(f'camera_height:={height} is not a number of metres') from None
    cameras = [name.strip() for name in LaunchConfiguration('cameras').perform(context).split(',')
               if name.strip()]
    if cameras:
        overrides['cameras'] = cameras
    respawn = LaunchConfiguration('respawn').perform(context).lower() == 'true'
    return [LifecycleNode(
        package=PACKAGE,
        executable='perception_node',
        name='jointdistill_perception',
        namespace=LaunchConfiguration('namespace'),
        output='screen',
        respawn=respawn,  # a crashed node comes back and, with autostart, serves again
        respawn_delay=2.0,
        parameters=[LaunchConfiguration('params_file'), overrides],
        remappings=[
            ('image', LaunchConfiguration('image_topic')),
            ('camera_info', LaunchConfiguration('camera_info_topic')),
        ],
    )]


def generate_launch_description():
    """Arguments, the RViz check, the Fast DDS profile, the node, then RViz when asked for."""
    share = get_package_share_directory(PACKAGE)
    default_params = os.path.join(share, 'config', 'jointdistill.yaml')
    fastdds_profile = os.path.join(share, 'config', 'fastdds_large_images.xml')
    rviz_config = os.path.join(share, 'config', 'jointdistill.rviz')

    arguments = [
        DeclareLaunchArgument('image_topic', default_value='/camera/image_raw',
                              description='Camera image topic (any encoding the node reads).'),
        DeclareLaunchArgument('camera_info_topic', default_value='/camera/camera_info',
                              description='CameraInfo of that camera (optional: default '
                                          'intrinsics are used when nothing arrives).'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace of the node and its output topics.'),
        DeclareLaunchArgument('params_file', default_value=default_params,
                              description='Parameter file (/**: ros__parameters:).'),
        DeclareLaunchArgument('model_path', default_value='',
                              description='Checkpoint or export; empty = the value in '
                                          'params_file (default: the shipped student).'),
        DeclareLaunchArgument('device', default_value='',
                              description='Inference device: auto, cpu or cuda; empty = the '
                                          'value in params_file (default: auto).'),
        DeclareLaunchArgument('transport', default_value='',
                              description='Image transport: raw or compressed (subscribes to '
                                          '<image>/compressed); empty = the value in '
                                          'params_file (default: raw).'),
        DeclareLaunchArgument('camera_height', default_value='',
                              description='Metres of the camera above the ground (your URDF): '
                                          'rescales depth so the segmented ground lies at that '
                                          'height; empty = the value in params_file (default: '
                                          '0, off).'),
        DeclareLaunchArgument('cameras', default_value='',
                              description='Comma-separated camera names for one node serving '
                                          'several cameras (e.g. front,rear); empty = the '
                                          'value in params_file (default: one camera on '
                                          'image_topic).'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='Use /clock (bag replay with --clock).'),
        DeclareLaunchArgument('respawn', default_value='true',
                              description='Restart the node 2 s after it dies (it configures '
                                          'and activates itself again).'),
        DeclareLaunchArgument('rviz', default_value='false',
                              description='Start RViz with config/jointdistill.rviz.'),
    ]
    rviz_wanted = IfCondition(LaunchConfiguration('rviz'))
    rviz = Node(
        package=RVIZ_PACKAGE,
        executable='rviz2',
        name='rviz2',
        arguments=['-d', rviz_config],
        parameters=[{'use_sim_time': ParameterValue(LaunchConfiguration('use_sim_time'),
                                                    value_type=bool)}],
        condition=rviz_wanted,
    )
    return LaunchDescription(arguments + [
        OpaqueFunction(function=_require_rviz, condition=rviz_wanted),  # before anything starts
        SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE', fastdds_profile),
        OpaqueFunction(function=_perception_node),
        rviz,
    ])
