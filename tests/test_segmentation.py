"""Automatic lesion segmentation: agreement with synthetic ground truth, dark corners, hair, edge cases."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from generator import CLASSES
from generator.sources.segmentation import field_of_view, segment_lesion
from generator.sources.synth import plan_dataset, render_image


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a.astype(bool) & b.astype(bool)).sum() / max(1, (a.astype(bool) | b.astype(bool)).sum()))


def _skin_with_disc(h=240, w=320, radius=60, lesion=(110, 70, 50), seed=0):
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), np.float32)
    img[:] = (225, 175, 155)
    img += rng.normal(0, 4, (h, w, 3))
    truth = np.zeros((h, w), np.uint8)
    cv2.circle(truth, (w // 2 + 10, h // 2 - 5), radius, 1, -1)
    img[truth > 0] = lesion
    return img, truth


def test_agrees_with_synthetic_ground_truth():
    plan = plan_dataset(0.05, seed=5)
    ious = {c: [] for c in CLASSES}
    for c in CLASSES:
        for p in [q for q in plan if q.dx == c][:6]:
            rgb, truth = render_image(p, 5, (240, 180))
            auto = segment_lesion(rgb)
            assert auto.shape == truth.shape and auto.dtype == np.uint8
            ious[c].append(_iou(auto, truth))
    mean = np.mean([v for vs in ious.values() for v in vs])
    assert mean > 0.7, {c: round(float(np.mean(v)), 2) for c, v in ious.items()}
    assert np.median([v for vs in ious.values() for v in vs]) > 0.8


def test_dark_dermatoscope_corners_are_excluded():
    img, truth = _skin_with_disc()
    h, w = truth.shape
    yy, xx = np.mgrid[0:h, 0:w]
    outside_field = (xx - w / 2) ** 2 + (yy - h / 2) ** 2 > (0.55 * w) ** 2  # black circular aperture
    img[outside_field] = 8
    rgb = np.clip(img, 0, 255).astype(np.uint8)
    auto = segment_lesion(rgb)
    assert not (auto.astype(bool) & outside_field).any()
    assert _iou(auto, truth) > 0.85
    fov = field_of_view(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    assert not fov[0, 0] and not fov[-1, -1] and fov[h // 2, w // 2]


def test_dark_corners_on_synthetic_photographs():
    plan = plan_dataset(0.05, seed=9)
    checked = 0
    for p in plan[:80]:
        rgb, truth = render_image(p, 9, (200, 150))
        corners = rgb[:6, :6].mean() < 25 and rgb[-6:, -6:].mean() < 25
        if not corners:
            continue
        auto = segment_lesion(rgb)
        assert auto[:6, :6].sum() == 0 and auto[-6:, -6:].sum() == 0
        checked += 1
    assert checked >= 3


def test_hair_does_not_break_the_mask():
    img, truth = _skin_with_disc(seed=1)
    rng = np.random.default_rng(2)
    for _ in range(12):
        p0 = tuple(int(v) for v in rng.integers(0, 320, 2))
        p1 = tuple(int(v) for v in rng.integers(0, 320, 2))
        cv2.line(img, p0, p1, (35, 25, 20), 2, cv2.LINE_AA)
    auto = segment_lesion(np.clip(img, 0, 255).astype(np.uint8))
    assert _iou(auto, truth) > 0.8


def test_red_vascular_lesion_is_found():
    img, truth = _skin_with_disc(lesion=(170, 40, 60), seed=3)
    assert _iou(segment_lesion(np.clip(img, 0, 255).astype(np.uint8)), truth) > 0.85


@pytest.mark.parametrize("shape", [(13, 17), (37, 53), (450, 600)])
def test_featureless_images_get_a_non_empty_central_mask(shape):
    rgb = np.full((*shape, 3), 200, np.uint8)
    mask = segment_lesion(rgb)
    assert mask.shape == shape and mask.dtype == np.uint8
    assert set(np.unique(mask)) == {0, 1}
    assert mask[shape[0] // 2, shape[1] // 2] == 1


def test_rejects_non_rgb_input():
    with pytest.raises(ValueError):
        segment_lesion(np.zeros((10, 10), np.uint8))
