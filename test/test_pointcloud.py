"""PointCloud2 from numpy (jointdistill_ros.pointcloud)."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from jointdistill_core.geometry import backproject
from jointdistill_ros.pointcloud import PointCloudError, make_pointcloud2, read_pointcloud2

K = np.array([[200.0, 0.0, 3.0], [0.0, 100.0, 2.0], [0.0, 0.0, 1.0]])


def scene() -> tuple[np.ndarray, np.ndarray]:
    """5x7 depth with two invalid pixels, and distinct colours per pixel."""
    depth = np.full((5, 7), 5.0, np.float32)
    depth[0, 0] = 2.0
    depth[4, 6] = 10.0
    depth[1, 1] = 0.0
    depth[3, 5] = np.nan
    rows, cols = np.indices((5, 7))
    colors = np.stack([rows * 40, cols * 30, 255 - cols * 10], axis=2).astype(np.uint8)
    return depth, colors


def header() -> Header:
    h = Header(frame_id='cam_optical')
    h.stamp.sec, h.stamp.nanosec = 7, 8
    return h


def test_layout_matches_the_pointfield_constants():
    depth, colors = scene()
    msg = make_pointcloud2(backproject(depth, K), colors, header())
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        ('x', 0, PointField.FLOAT32, 1), ('y', 4, PointField.FLOAT32, 1),
        ('z', 8, PointField.FLOAT32, 1), ('rgb', 12, PointField.FLOAT32, 1)]
    assert PointField.FLOAT32 == 7  # the value in sensor_msgs/PointField.msg
    assert msg.point_step == 16 and msg.is_bigendian is False
    assert msg.header.frame_id == 'cam_optical' and msg.header.stamp.sec == 7


def test_skip_invalid_gives_unorganised_dense_cloud_with_hand_points():
    depth, colors = scene()
    msg = make_pointcloud2(backproject(depth, K), colors, header())
    assert (msg.height, msg.width) == (1, 33)  # 35 pixels minus 2 invalid
    assert msg.row_step == 33 * 16 and len(msg.data) == 33 * 16 and msg.is_dense is True
    # First point is pixel (v=0, u=0), z = 2: x = (0-3)*2/200 = -0.03, y = (0-2)*2/100 = -0.04.
    x, y, z, rgb_float = struct.unpack_from('<ffff', bytes(msg.data), 0)
    assert (x, y, z) == pytest.approx((-0.03, -0.04, 2.0))
    rgb = struct.unpack('<I', struct.pack('<f', rgb_float))[0]
    assert rgb == (0 << 16) | (0 << 8) | 255
    # Last point is pixel (v=4, u=6), z = 10: x = 3*10/200 = 0.15, y = 2*10/100 = 0.2.
    x, y, z, rgb_float = struct.unpack_from('<ffff', bytes(msg.data), 32 * 16)
    assert (x, y, z) == pytest.approx((0.15, 0.2, 10.0))
    assert struct.unpack('<I', struct.pack('<f', rgb_float))[0] == (160 << 16) | (180 << 8) | 195


def test_organised_cloud_keeps_grid_and_nan_points():
    depth, colors = scene()
    msg = make_pointcloud2(backproject(depth, K), colors, header(), skip_invalid=False)
    assert (msg.height, msg.width, msg.row_step, msg.is_dense) == (5, 7, 7 * 16, False)
    xyz, rgb = read_pointcloud2(msg)
    assert xyz.shape == (35, 3) and rgb.shape == (35, 3)
    assert np.isnan(xyz[1 * 7 + 1]).all() and np.isnan(xyz[3 * 7 + 5]).all()
    # Pixel (v=2, u=4), z = 5: x = 1*5/200 = 0.025, y = 0.
    np.testing.assert_allclose(xyz[2 * 7 + 4], [0.025, 0.0, 5.0], atol=1e-7)
    np.testing.assert_array_equal(rgb, colors.reshape(-1, 3))


def test_organised_cloud_without_nan_is_dense():
    points = np.ones((2, 3, 3), np.float32)
    msg = make_pointcloud2(points, np.zeros((2, 3, 3), np.uint8), header(), skip_invalid=False)
    assert msg.is_dense is True


def test_colours_round_trip_through_read():
    depth, colors = scene()
    xyz, rgb = read_pointcloud2(make_pointcloud2(backproject(depth, K), colors, header()))
    valid = np.isfinite(depth) & (depth > 0)
    np.testing.assert_array_equal(rgb, colors[valid])
    np.testing.assert_allclose(xyz, backproject(depth, K)[valid])


def test_all_invalid_gives_an_empty_cloud():
    msg = make_pointcloud2(np.full((2, 2, 3), np.nan, np.float32), np.zeros((2, 2, 3), np.uint8),
                           header())
    assert (msg.height, msg.width, len(msg.data)) == (1, 0, 0)
    xyz, rgb = read_pointcloud2(msg)
    assert xyz.shape == (0, 3) and rgb.shape == (0, 3)


def hand_cloud(big_endian: bool, row_padding: int) -> PointCloud2:
    """A 2x2 organised cloud laid out by hand: rgb as UINT32 first, then z, y, x, step 20."""
    order = '>' if big_endian else '<'
    rows = []
    for row in range(2):
        row_bytes = b''
        for col in range(2):
            x, y, z = float(col), float(row), 1.5 + row
            rgb = (10 * row << 16) | (20 * col << 8) | 30
            row_bytes += struct.pack(order + 'Ifff', rgb, z, y, x) + b'\xee' * 4
        rows.append(row_bytes + b'\xcc' * row_padding)
    fields = [PointField(name='rgb', offset=0, datatype=PointField.UINT32, count=1)]
    fields += [PointField(name=n, offset=o, datatype=PointField.FLOAT32, count=1)
               for n, o in (('z', 4), ('y', 8), ('x', 12))]
    return PointCloud2(height=2, width=2, fields=fields, is_bigendian=big_endian, point_step=20,
                       row_step=40 + row_padding, data=b''.join(rows), is_dense=True)


@pytest.mark.parametrize('big_endian', [False, True])
def test_read_honours_field_offsets_padding_and_byte_order(big_endian):
    xyz, rgb = read_pointcloud2(hand_cloud(big_endian, row_padding=6))
    np.testing.assert_array_equal(xyz, [[0, 0, 1.5], [1, 0, 1.5], [0, 1, 2.5], [1, 1, 2.5]])
    np.testing.assert_array_equal(rgb, [[0, 0, 30], [0, 20, 30], [10, 0, 30], [10, 20, 30]])


def test_read_errors_name_the_field():
    cloud = hand_cloud(False, 0)
    cloud.fields = cloud.fields[1:]
    with pytest.raises(PointCloudError, match="fields lack 'rgb'"):
        read_pointcloud2(cloud)
    cloud = hand_cloud(False, 0)
    cloud.data = bytes(cloud.data)[:-1]
    with pytest.raises(PointCloudError, match='^data'):
        read_pointcloud2(cloud)
    cloud = hand_cloud(False, 0)
    cloud.row_step = 39
    with pytest.raises(PointCloudError, match='^row_step'):
        read_pointcloud2(cloud)
    cloud = hand_cloud(False, 0)
    cloud.point_step = 12
    cloud.row_step = 24
    cloud.data = bytes(48)
    with pytest.raises(PointCloudError, match='^point_step'):
        read_pointcloud2(cloud)


def test_make_rejects_mismatched_inputs():
    with pytest.raises(PointCloudError, match='^points'):
        make_pointcloud2(np.zeros((2, 2), np.float32), np.zeros((2, 2, 3), np.uint8), header())
    with pytest.raises(PointCloudError, match='^colors'):
        make_pointcloud2(np.zeros((2, 2, 3), np.float32), np.zeros((2, 3, 3), np.uint8), header())
    with pytest.raises(PointCloudError, match='^colors'):
        make_pointcloud2(np.zeros((2, 2, 3), np.float32), np.zeros((2, 2, 3)), header())


def test_sensor_msgs_py_reads_our_cloud():
    point_cloud2 = pytest.importorskip(
        'sensor_msgs_py.point_cloud2',
        reason='sensor_msgs_py not installed (no wheel); runs in a ROS install')
    depth, colors = scene()
    msg = make_pointcloud2(backproject(depth, K), colors, header())
    points = point_cloud2.read_points(msg, field_names=('x', 'y', 'z', 'rgb'))
    xyz = np.stack([points['x'], points['y'], points['z']], axis=1)
    valid = np.isfinite(depth) & (depth > 0)
    np.testing.assert_allclose(xyz, backproject(depth, K)[valid])
    packed = np.asarray(points['rgb'], np.float32).view(np.uint32)
    np.testing.assert_array_equal(packed >> 16, colors[valid][:, 0])
