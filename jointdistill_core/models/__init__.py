"""Networks: the multi-task student and the single-task teachers (foreign teachers, files and
folders a user brings, are read through jointdistill_core.teachers)."""
from jointdistill_core.models.blocks import fuse_conv_bn
from jointdistill_core.models.factory import ARCHITECTURES, ModelSpecError, build_model
from jointdistill_core.models.outputs import ModelOutput
from jointdistill_core.models.profile import activation_bytes, count_flops, count_parameters
from jointdistill_core.models.student import JointStudent
from jointdistill_core.models.teachers import DepthTeacher, SegTeacher

__all__ = ['ARCHITECTURES', 'DepthTeacher', 'JointStudent', 'ModelOutput', 'ModelSpecError',
           'SegTeacher', 'activation_bytes', 'build_model', 'count_flops', 'count_parameters',
           'fuse_conv_bn']
