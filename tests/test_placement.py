"""Placement statistics over many seeds on a synthetic image with a central lesion (the paper's rules)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from generator.artefacts import insert_artefact, realize
from generator.artefacts.placement import _gaussian_blur, make_scene
from generator.artefacts.templates import TemplateBank

HEIGHT, WIDTH = 240, 320
SEEDS = range(200)


def central_lesion(height: int = HEIGHT, width: int = WIDTH, shift=(0, 0)) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    cy, cx = height / 2 + shift[0], width / 2 + shift[1]
    return ((((y - cy) / (height * 0.25)) ** 2 + ((x - cx) / (width * 0.22)) ** 2) < 1).astype(np.uint8)


@pytest.fixture(scope="module")
def bank() -> TemplateBank:
    return TemplateBank.builtin(0)


@pytest.mark.parametrize("kind", ["bubble", "marking_spot"])
def test_scattered_artefacts_avoid_the_lesion(bank, kind):
    mask = central_lesion()
    lesion = mask.astype(bool)
    image = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    on_lesion = total = 0
    centres_on_lesion = centres = 0
    for seed in SEEDS:
        _, artefact_mask, record = insert_artefact(image, mask, kind, bank, seed)
        on_lesion += int((artefact_mask & lesion).sum())
        total += int(artefact_mask.sum())
        for instance in record["instances"]:
            centres += 1
            centres_on_lesion += int(lesion[instance["centre"][0], instance["centre"][1]])
    uniform_share = lesion.mean()  # what a uniform placement would put on the lesion
    assert total > 0
    assert on_lesion / total < 0.35 * uniform_share, (on_lesion / total, uniform_share)
    assert centres_on_lesion / centres < 0.2 * uniform_share


def test_scatter_without_mask_is_centre_weighted_but_avoids_the_stand_in_lesion(bank):
    rows = []
    for seed in range(100):
        record = realize("bubble", bank, (HEIGHT, WIDTH), None, seed)
        rows += [inst["centre"] for inst in record["instances"]]
    rows = np.array(rows)
    # beta(1.5, 1.5) keeps most centres away from the outermost tenth of the image
    edge = (rows[:, 0] < HEIGHT * 0.1) | (rows[:, 0] > HEIGHT * 0.9)
    assert edge.mean() < 0.2
    # the stand-in lesion is the central ellipse with half the image's extents
    dy, dx = (rows[:, 0] - HEIGHT / 2) / (HEIGHT / 4), (rows[:, 1] - WIDTH / 2) / (WIDTH / 4)
    assert np.mean(dy * dy + dx * dx < 0.5) < 0.05


def test_bubbles_do_not_overlap_where_avoidable(bank):
    from generator.artefacts.placement import box_at

    overlapping = 0
    pairs = 0
    for seed in range(60):
        record = realize("bubble", bank, (450, 600), None, seed)
        boxes = []
        for instance in record["instances"]:
            template = bank.template(instance["template"])
            from generator.artefacts import transformed_size

            size = transformed_size(template.shape, instance["scale"], instance["angle"])
            boxes.append(box_at(tuple(instance["centre"]), size))
        for i in range(len(boxes)):
            for j in range(i):
                a, b = boxes[i], boxes[j]
                pairs += 1
                overlapping += a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
    assert pairs > 50 and overlapping == 0


@pytest.mark.parametrize("shift", [(0, 0), (-40, 60), (50, -70)])
def test_circle_markings_are_centred_on_the_lesion(bank, shift):
    mask = central_lesion(shift=shift)
    ys, xs = np.nonzero(mask)
    centroid = np.array([ys.mean(), xs.mean()])
    diagonal = math.hypot(HEIGHT, WIDTH)
    for seed in SEEDS:
        record = realize("marking_circle", bank, (HEIGHT, WIDTH), mask, seed)
        (instance,) = record["instances"]
        assert np.linalg.norm(np.array(instance["centre"]) - centroid) < 0.1 * diagonal


def test_circle_marking_without_mask_is_at_the_image_centre(bank):
    record = realize("marking_circle", bank, (HEIGHT, WIDTH), None, 1)
    assert abs(record["instances"][0]["centre"][0] - HEIGHT / 2) <= 1
    assert abs(record["instances"][0]["centre"][1] - WIDTH / 2) <= 1


def test_horizontal_rulers_lie_in_the_lower_third_and_middle_third(bank):
    mask = central_lesion()
    angles = []
    for seed in SEEDS:
        record = realize("ruler_horizontal", bank, (HEIGHT, WIDTH), mask, seed)
        for instance in record["instances"]:
            row, col = instance["centre"]
            assert row >= 2 * HEIGHT / 3 - 1
            assert WIDTH / 3 - 1 <= col < 2 * WIDTH / 3 + 1
            assert -20 <= instance["angle"] <= 20
            angles.append(instance["angle"])
    assert min(angles) < -10 and max(angles) > 10


def test_vertical_rulers_keep_to_the_periphery_and_off_the_lesion(bank):
    mask = central_lesion()
    lesion = mask.astype(bool)
    image = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    on_lesion = total = 0
    distances = []
    for seed in SEEDS:
        _, artefact_mask, record = insert_artefact(image, mask, "ruler_vertical", bank, seed)
        on_lesion += int((artefact_mask & lesion).sum())
        total += int(artefact_mask.sum())
        row, col = record["instances"][0]["centre"]
        distances.append(max(abs(row - HEIGHT / 2) / HEIGHT, abs(col - WIDTH / 2) / WIDTH))
    assert on_lesion / total < 0.5 * lesion.mean()
    # uniform centres would have a mean Chebyshev distance (relative) of 1/3; periphery is further out
    assert np.mean(distances) > 0.33


def test_scene_blur_matches_scipy_gaussian_filter():
    from scipy import ndimage

    grid = np.zeros((40, 50))
    grid[10:25, 15:30] = 1.0
    ours = _gaussian_blur(grid, 2.5)
    reference = ndimage.gaussian_filter(grid, 2.5, mode="reflect", truncate=3.0)
    assert np.abs(ours - reference).max() < 0.01


def test_scene_centroid_is_exact():
    mask = central_lesion(shift=(13, -27)).astype(bool)
    scene = make_scene(HEIGHT, WIDTH, mask)
    ys, xs = np.nonzero(mask)
    assert scene.centroid == pytest.approx((ys.mean(), xs.mean()), abs=1e-9)
    assert scene.lesion_cells.sum() * scene.cell**2 == pytest.approx(mask.sum(), rel=1e-9)
