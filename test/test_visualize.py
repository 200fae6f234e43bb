"""Colouring of depth and labels: expected colours worked out by hand from the class palette
and matplotlib's turbo map (independent of the cv2 look-up tables the code uses)."""
from __future__ import annotations

import numpy as np
from matplotlib import colormaps

from jointdistill_core.classes import class_colors
from jointdistill_core.visualize import colorize_depth, colorize_labels, overlay_labels


def turbo(index: int) -> np.ndarray:
    return (np.asarray(colormaps['turbo'](index / 255)[:3]) * 255).astype(np.uint8)


def test_labels_take_class_colours_and_unknown_ids_are_black():
    palette = np.asarray(class_colors(7), np.uint8)
    labels = np.array([[0, 1, 2, 3], [4, 5, 6, 7], [255, 6, 0, 9]], np.uint8)
    rgb = colorize_labels(labels, 7)
    assert rgb.shape == (3, 4, 3) and rgb.dtype == np.uint8
    for (row, col), label in np.ndenumerate(labels):
        expected = palette[label] if label < 7 else np.zeros(3, np.uint8)
        np.testing.assert_array_equal(rgb[row, col], expected)
    # Non-uint8 ids, strided views and a smaller class count.
    wide = np.array([[1, 3], [2, 0]], np.int64)[:, ::-1]
    np.testing.assert_array_equal(colorize_labels(wide, 2)[0, 1], class_colors(2)[1])
    np.testing.assert_array_equal(colorize_labels(wide, 2)[0, 0], [0, 0, 0])


def test_depth_maps_near_to_the_top_of_turbo_and_invalid_to_black():
    # max_depth 255 m: position = 255 - depth exactly, so depth 255 - k -> turbo entry k.
    depth = np.array([[255.0, 155.0, 0.5, 300.0],
                      [0.0, np.nan, np.inf, -3.0]], np.float32)
    rgb = colorize_depth(depth, max_depth=255.0)
    np.testing.assert_array_equal(rgb[0, 0], turbo(0))     # far end
    np.testing.assert_array_equal(rgb[0, 1], turbo(100))
    np.testing.assert_array_equal(rgb[0, 2], turbo(254))   # 254.5 truncates to 254
    np.testing.assert_array_equal(rgb[0, 3], turbo(0))     # beyond max_depth clips to the far end
    np.testing.assert_array_equal(rgb[1], np.zeros((4, 3), np.uint8))


def test_depth_default_range_is_the_99th_percentile():
    depth = np.linspace(1.0, 100.0, 100, dtype=np.float32).reshape(10, 10)
    far = np.percentile(depth, 99)  # 99.01
    expected_index = int((far - 50.0) * 255.0 / far)
    np.testing.assert_array_equal(colorize_depth(depth)[4, 9], turbo(expected_index))


def test_overlay_blends_known_classes_and_keeps_void_pixels():
    image = np.full((2, 3, 3), 100, np.uint8)
    image[1, 2] = (10, 20, 30)
    labels = np.array([[0, 1, 255], [6, 7, 2]], np.uint8)
    palette = np.asarray(class_colors(7), np.float64)
    alpha = 0.25
    out = overlay_labels(image, labels, 7, alpha)
    for (row, col), label in np.ndenumerate(labels):
        if label < 7:
            # Rounded to nearest, ties to even (92.5 -> 92), as cv2.addWeighted does.
            expected = np.rint((1 - alpha) * image[row, col] + alpha * palette[label])
        else:
            expected = image[row, col]
        np.testing.assert_allclose(out[row, col], expected, atol=0, err_msg=f'{row},{col}')
    assert overlay_labels(image, labels, 7, 0.0).tolist() == image.tolist()
    given = overlay_labels(image, labels, 7, alpha, colors=colorize_labels(labels, 7))
    np.testing.assert_array_equal(given, out)
