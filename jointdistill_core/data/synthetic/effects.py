"""The camera: from linear radiance to an 8-bit image, with the flaws of real cameras.

In order: defocus blur (strength from each pixel's depth against a focus distance) and
motion blur in linear light, vignetting, auto exposure with a random bias, white balance
error, sensor noise (shot noise growing with the signal, plus read noise), a filmic tone
curve with random contrast and saturation, sRGB gamma, quantisation, lateral chromatic
aberration and JPEG compression. Only the image changes: depth, labels and K stay exact.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class CameraEffects:
    """One frame's camera. exposure_bias: EV stops around the metered exposure;
    white_balance: (3,) channel gains; defocus: (focus distance m, blur sigma in pixels per
    dioptre of defocus) or None; motion: (length px, angle rad) or None; shot_noise and
    read_noise: standard deviations at signal 1; vignetting: corner darkening fraction;
    chromatic_px: red/blue shift at the corners; jpeg_quality: 1-100 or None."""
    exposure_bias: float
    white_balance: np.ndarray
    contrast: float
    saturation: float
    defocus: tuple[float, float] | None
    motion: tuple[float, float] | None
    shot_noise: float
    read_noise: float
    vignetting: float
    chromatic_px: float
    jpeg_quality: int | None

    @classmethod
    def neutral(cls) -> 'CameraEffects':
        """Metered exposure and nothing else: a clean image."""
        return cls(0.0, np.ones(3), 1.0, 1.0, None, None, 0.0, 0.0, 0.0, 0.0, None)


EXPOSURE_BIAS_EV = {'dusk': -0.8, 'indoor': -0.2}   # mean bias by lighting (else 0)


def draw_effects(rng: np.random.Generator, width: int, lighting: str = 'clear'
                 ) -> CameraEffects:
    """Random camera flaws for an image `width` pixels wide (blur lengths scale with it).
    lighting: the scene's light ('clear', 'overcast', 'dusk', 'indoor'); dusk frames come
    out darker on average, as real cameras expose them."""
    scale = width / 320.0
    temperature = rng.normal(0, 0.08)
    tint = rng.normal(0, 0.03)
    white_balance = np.exp(np.array([temperature + tint, -tint, -temperature + tint]))
    defocus = None
    if rng.random() < 0.25:
        defocus = (float(np.exp(rng.uniform(np.log(1.5), np.log(40.0)))),
                   float(rng.uniform(0.5, 3.0) * scale))
    motion = None
    if rng.random() < 0.2:
        motion = (float(rng.uniform(1.5, 6.0) * scale), float(rng.uniform(0, np.pi)))
    iso = np.exp(rng.uniform(np.log(0.002), np.log(0.05)))
    return CameraEffects(
        exposure_bias=float(rng.normal(EXPOSURE_BIAS_EV.get(lighting, 0.0), 0.45)),
        white_balance=white_balance,
        contrast=float(rng.uniform(0.85, 1.25)),
        saturation=float(rng.uniform(0.7, 1.25)),
        defocus=defocus, motion=motion,
        shot_noise=float(iso), read_noise=float(iso * rng.uniform(0.2, 0.6)),
        vignetting=float(rng.uniform(0.0, 0.45)),
        chromatic_px=float(rng.uniform(0, 1.2) * scale) if rng.random() < 0.3 else 0.0,
        jpeg_quality=int(rng.integers(35, 96)) if rng.random() < 0.6 else None)


def _defocus(image: np.ndarray, depth: np.ndarray, focus_m: float, sigma_per_dioptre: float
             ) -> np.ndarray:
    """Blend of the image and two blurred copies by each pixel's defocus |1/d - 1/focus|
    (sky counts as infinitely far)."""
    inverse = np.where(depth > 0, 1.0 / np.maximum(depth, 1e-3), 0.0)
    sigma = np.abs(inverse - 1.0 / focus_m) * sigma_per_dioptre
    levels = (0.0, 1.2, 3.0)
    blurred = [image] + [cv2.GaussianBlur(image, (0, 0), level) for level in levels[1:]]
    sigma = np.clip(sigma, 0, levels[-1]).astype(np.float32)
    low = np.where(sigma < levels[1], 0, 1)
    t = np.where(low == 0, sigma / levels[1], (sigma - levels[1]) / (levels[2] - levels[1]))
    t = t[..., None].astype(np.float32)
    first = np.where(low[..., None] == 0, blurred[0], blurred[1])
    second = np.where(low[..., None] == 0, blurred[1], blurred[2])
    return first * (1 - t) + second * t


def _motion(image: np.ndarray, length: float, angle: float) -> np.ndarray:
    size = int(np.ceil(length)) | 1
    kernel = np.zeros((size, size), np.float32)
    centre = size // 2
    for step in np.linspace(-length / 2, length / 2, 4 * size):
        row = int(round(centre + step * np.sin(angle)))
        kernel[row, int(round(centre + step * np.cos(angle)))] = 1
    return cv2.filter2D(image, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT)


def _tone_curve(x: np.ndarray, contrast: float) -> np.ndarray:
    """Filmic shoulder (highlights roll off instead of clipping), then a contrast S-curve
    about mid grey, in display-linear values."""
    x = np.maximum(x, 0)
    mapped = x * (1 + x / 4.0) / (1 + x)
    mapped = np.clip(mapped, 0, 1)
    mid = np.float32(0.18)
    return np.clip(mid * (mapped / mid) ** np.float32(contrast), 0, 1)


def develop(radiance: np.ndarray, depth: np.ndarray, effects: CameraEffects,
            rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) float32 linear radiance -> (H, W, 3) uint8 sRGB image.

    depth: (H, W) metres, 0 = sky (for the defocus blur). rng draws the sensor noise.
    """
    height, width = depth.shape
    image = radiance
    if effects.defocus is not None:
        image = _defocus(image, depth, *effects.defocus)
    if effects.motion is not None:
        image = _motion(image, *effects.motion)
    if effects.vignetting > 0:
        v, u = np.mgrid[0:height, 0:width].astype(np.float32)
        r2 = ((u - (width - 1) / 2) ** 2 + (v - (height - 1) / 2) ** 2) / (
            ((width - 1) / 2) ** 2 + ((height - 1) / 2) ** 2)
        image = image * (1 - np.float32(effects.vignetting) * r2)[..., None]
    luminance = image @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    metered = np.exp(np.mean(np.log(np.clip(luminance, 1e-4, None))))
    gain = 0.2 / metered * 2.0 ** effects.exposure_bias
    image = image * np.float32(gain) * effects.white_balance.astype(np.float32)
    if effects.shot_noise > 0:
        sigma = np.sqrt(np.maximum(image, 0) * np.float32(effects.shot_noise ** 2)
                        + np.float32(effects.read_noise ** 2))
        image = image + rng.standard_normal(image.shape, dtype=np.float32) * sigma
    image = _tone_curve(image, effects.contrast)
    grey = image.mean(axis=2, keepdims=True)
    image = np.clip(grey + (image - grey) * np.float32(effects.saturation), 0, 1)
    srgb = np.where(image <= 0.0031308, 12.92 * image, 1.055 * np.power(image, 1 / 2.4) - 0.055)
    out = np.clip(srgb * 255 + 0.5, 0, 255).astype(np.uint8)
    if effects.chromatic_px > 0:
        out = _chromatic(out, effects.chromatic_px)
    if effects.jpeg_quality is not None:
        ok, encoded = cv2.imencode('.jpg', out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY,
                                                             effects.jpeg_quality])
        out = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1].copy()
    return out


def _chromatic(image: np.ndarray, shift_px: float) -> np.ndarray:
    """Scale the red channel up and the blue channel down about the centre (lateral CA)."""
    height, width = image.shape[:2]
    scale = shift_px / (0.5 * np.hypot(width, height))
    out = image.copy()
    for channel, factor in ((0, 1 + scale), (2, 1 - scale)):
        matrix = np.array([[factor, 0, (1 - factor) * (width - 1) / 2],
                           [0, factor, (1 - factor) * (height - 1) / 2]], np.float32)
        out[..., channel] = cv2.warpAffine(image[..., channel], matrix, (width, height),
                                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out
