"""ament_python package `jointdistill_ros`: the ROS-free core plus thin rclpy nodes."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'jointdistill_ros'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(include=['jointdistill_core', 'jointdistill_core.*',
                                    'jointdistill_ros', 'jointdistill_ros.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        ('share/' + PACKAGE + '/launch', glob('launch/*.launch.py')),
        ('share/' + PACKAGE + '/config', glob('config/*.yaml') + glob('config/*.xml')
         + glob('config/*.rviz')),
        ('share/' + PACKAGE + '/config/train', glob('config/train/*.yaml')),
        ('share/' + PACKAGE + '/config/train/real', glob('config/train/real/*.yaml')),
        ('share/' + PACKAGE + '/config/study', glob('config/study/*.yaml')),
        ('share/' + PACKAGE + '/config/class_maps', glob('config/class_maps/*.yaml')),
        ('share/' + PACKAGE + '/models', glob('models/*.safetensors') + glob('models/*.json')
         + glob('models/*.md')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='JointDistill-ROS maintainers',
    maintainer_email='maintainers@jointdistill.dev',
    description='One network for metric depth and semantic segmentation, '
                'trained by adaptive multi-teacher distillation, served by ROS 2 nodes.',
    license='Apache-2.0',
    extras_require={'test': ['pytest', 'hypothesis']},
    entry_points={
        'console_scripts': [
            'jointdistill = jointdistill_ros.cli:main',
            'perception_node = jointdistill_ros.perception_node:main',
        ],
    },
)
