"""Artefact insertion: determinism, replay, artefact masks, clipping, robustness, error messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from generator.artefacts import insert_artefact, paint_instance, realize, realize_random, render
from generator.artefacts.kinds import DEFAULT_FAMILIES, FAMILIES, KINDS, list_kinds
from generator.artefacts.templates import Template, TemplateBank, TemplateSet
from generator.errors import UserError

REPO = Path(__file__).resolve().parents[1]
REAL_TEMPLATES = REPO.parent / "shared" / "artefact-templates"


def skin_image(height: int = 240, width: int = 320, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Textured skin-like image and a central elliptical lesion mask (0/1)."""
    rng = np.random.default_rng(seed)
    image = np.clip(rng.normal([196, 150, 128], 12, (height, width, 3)), 0, 255).astype(np.uint8)
    y, x = np.mgrid[0:height, 0:width]
    mask = (((y - height / 2) / (height * 0.22)) ** 2 + ((x - width / 2) / (width * 0.2)) ** 2 < 1).astype(
        np.uint8
    )
    image[mask == 1] //= 2
    return image, mask


@pytest.fixture(scope="module")
def builtin() -> TemplateBank:
    return TemplateBank.builtin(0)


def test_registry_has_the_papers_five_kinds_in_three_families_then_bissotos_four():
    assert list_kinds() == [
        "bubble",
        "ruler_horizontal",
        "ruler_vertical",
        "marking_circle",
        "marking_spot",
        "hair",
        "dark_corner",
        "gel_border",
        "patches",
    ]
    assert FAMILIES == {
        "bubble": ("bubble",),
        "ruler": ("ruler_horizontal", "ruler_vertical"),
        "marking": ("marking_circle", "marking_spot"),
        "hair": ("hair",),
        "dark_corner": ("dark_corner",),
        "gel_border": ("gel_border",),
        "patches": ("patches",),
    }
    assert all(spec.family in FAMILIES for spec in KINDS.values())


_SUBPROCESS_CODE = """
import hashlib, json, sys
import numpy as np
from generator.artefacts import insert_artefact
from generator.artefacts.templates import TemplateBank
rng = np.random.default_rng(5)
image = rng.integers(0, 256, (180, 240, 3), dtype=np.uint8)
mask = np.zeros((180, 240), np.uint8); mask[60:120, 80:160] = 255
bank = TemplateBank.builtin(0)
digest = hashlib.sha256()
for kind in bank.kinds():
    for seed in (1, 2):
        out, amask, record = insert_artefact(image, mask, kind, bank, seed)
        digest.update(out.tobytes()); digest.update(amask.tobytes())
        digest.update(json.dumps(record, sort_keys=True).encode())
print(digest.hexdigest())
"""


def test_same_seed_gives_identical_bytes_in_separate_processes():
    runs = [
        subprocess.run(
            [sys.executable, "-c", _SUBPROCESS_CODE], capture_output=True, text=True, cwd=REPO, timeout=120
        )
        for _ in range(2)
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr
    first, second = (run.stdout.strip() for run in runs)
    assert len(first) == 64 and first == second
    # and the same again in this process (after other work has warmed any cache)
    namespace: dict = {}
    from contextlib import redirect_stdout
    from io import StringIO

    buffer = StringIO()
    with redirect_stdout(buffer):
        exec(_SUBPROCESS_CODE, namespace)
    assert buffer.getvalue().strip() == first


@pytest.mark.parametrize("kind", list(KINDS))
def test_record_replays_byte_identically_after_json_round_trip(builtin, kind):
    image, mask = skin_image()
    for seed in range(4):
        out, artefact_mask, record = insert_artefact(image, mask, kind, builtin, seed)
        replayed = json.loads(json.dumps(record))
        out2, mask2 = render(image, replayed, builtin)
        assert out2.tobytes() == out.tobytes()
        assert np.array_equal(mask2, artefact_mask)
        assert record["kind"] == kind and record["bank"] == builtin.fingerprint
        assert realize(kind, builtin, image.shape, mask, seed) == record


@pytest.mark.parametrize("kind", list(KINDS))
def test_artefact_mask_is_exactly_the_changed_pixels(builtin, kind):
    image, mask = skin_image(seed=3)
    changed_somewhere = 0
    for seed in range(6):
        out, artefact_mask, _ = insert_artefact(image, mask, kind, builtin, seed)
        assert out.dtype == np.uint8 and out.shape == image.shape
        assert artefact_mask.dtype == bool and artefact_mask.shape == image.shape[:2]
        assert np.array_equal(artefact_mask, np.any(out != image, axis=2))
        changed_somewhere += int(artefact_mask.sum())
    assert changed_somewhere > 0


def test_different_seeds_give_different_insertions(builtin):
    image, mask = skin_image()
    outs = {insert_artefact(image, mask, "bubble", builtin, seed)[0].tobytes() for seed in range(5)}
    assert len(outs) == 5


def _single_template_bank(pixels: np.ndarray, kind: str = "marking_circle") -> TemplateBank:
    template = Template("probe/0", kind, pixels.astype(np.int16))
    return TemplateBank([TemplateSet("probe", kind, (template,))], source="test")


def test_compositing_adds_signed_template_and_clips_at_both_ends():
    rng = np.random.default_rng(0)
    pixels = rng.integers(-255, 256, (21, 31, 3)).astype(np.int16)
    template = Template("probe/0", "bubble", pixels)
    for fill in (0, 3, 128, 250, 255):
        image = np.full((64, 80, 3), fill, np.uint8)
        out = image.copy()
        paint_instance(out, template, "none", 1.0, 0, (30, 40))
        expected = image.astype(np.int32)
        expected[20:41, 25:56] += pixels
        assert np.array_equal(out, np.clip(expected, 0, 255).astype(np.uint8))
    # a darkening template on black and a brightening one on white change nothing
    for fill, sign in ((0, -1), (255, 1)):
        image = np.full((120, 120, 3), fill, np.uint8)
        bank = _single_template_bank(sign * np.abs(pixels))
        for seed in range(5):
            out, artefact_mask, _ = insert_artefact(image, None, "marking_circle", bank, seed)
            assert np.array_equal(out, image) and not artefact_mask.any()


def test_warped_instances_clip_and_stay_within_value_range():
    bank = _single_template_bank(np.full((40, 60, 3), 200, np.int16), kind="bubble")
    image = np.full((128, 128, 3), 100, np.uint8)
    out, artefact_mask, record = insert_artefact(image, None, "bubble", bank, 7)
    assert any(inst["angle"] % 90 or inst["scale"] != 1.0 for inst in record["instances"])
    assert out.max() == 255 and artefact_mask.any()
    assert np.all(out[artefact_mask] > 100)


@pytest.mark.parametrize("shape", [(64, 64), (64, 300), (300, 64), (97, 131)])
def test_small_and_odd_images_work_and_templates_are_scaled_down(builtin, shape):
    rng = np.random.default_rng(1)
    image = rng.integers(60, 200, (*shape, 3), dtype=np.uint8)
    for kind in KINDS:
        out, artefact_mask, record = insert_artefact(image, None, kind, builtin, 3)
        assert out.shape == image.shape
        for instance in record["instances"]:
            template = builtin.template(instance["template"])
            from generator.artefacts import transformed_size

            height, width = transformed_size(template.shape, instance["scale"], instance["angle"])
            assert height <= shape[0] and width <= shape[1]
        assert np.array_equal(artefact_mask, np.any(out != image, axis=2))


def test_grayscale_and_rgba_inputs_are_converted(builtin):
    image, mask = skin_image(96, 128)
    gray = image[:, :, 0].copy()
    out, _, _ = insert_artefact(gray, mask, "bubble", builtin, 0)
    assert out.shape == (96, 128, 3)
    expected, _, _ = insert_artefact(np.repeat(gray[:, :, None], 3, axis=2), mask, "bubble", builtin, 0)
    assert np.array_equal(out, expected)
    rgba = np.concatenate([image, np.full((96, 128, 1), 255, np.uint8)], axis=2)
    out_rgba, _, _ = insert_artefact(rgba, mask, "bubble", builtin, 0)
    assert np.array_equal(out_rgba, insert_artefact(image, mask, "bubble", builtin, 0)[0])


def test_mask_conventions_and_wrong_size(builtin):
    image, mask = skin_image()
    record01 = realize("bubble", builtin, image.shape, mask, 4)
    record255 = realize("bubble", builtin, image.shape, mask * 255, 4)
    assert record01 == record255
    with pytest.raises(UserError, match="does not match the image size 320x240"):
        realize("bubble", builtin, image.shape, mask[:100], 4)


def test_bad_kind_lists_valid_kinds(builtin):
    with pytest.raises(UserError) as info:
        realize("beard", builtin, (100, 100), None, 0)
    for kind in KINDS:
        assert kind in str(info.value)


def test_render_rejects_a_record_from_another_bank(builtin):
    image, mask = skin_image()
    record = realize("bubble", builtin, image.shape, mask, 0)
    with pytest.raises(UserError, match="template bank"):
        render(image, record, TemplateBank.builtin(1))
    with pytest.raises(UserError, match="drawn for a 320x240 image"):
        render(image[:100], record, builtin)


def test_realize_random_picks_families_then_kinds_uniformly(builtin):
    # the paper's three families, as generate draws from by default
    paper = builtin.for_families(DEFAULT_FAMILIES)
    kinds = [realize_random(paper, (64, 64), None, seed)["kind"] for seed in range(400)]
    family_of = {kind: spec.family for kind, spec in KINDS.items()}
    for family in DEFAULT_FAMILIES:
        share = sum(family_of[k] == family for k in kinds) / len(kinds)
        assert abs(share - 1 / 3) < 0.08, (family, share)
    for kind in ("ruler_horizontal", "ruler_vertical", "marking_circle", "marking_spot"):
        share = kinds.count(kind) / len(kinds)
        assert abs(share - 1 / 6) < 0.065, (kind, share)
    # restricted to the families present in the bank
    only_rulers = TemplateBank(builtin.sets["ruler_vertical"], source="rulers")
    assert {realize_random(only_rulers, (120, 160), None, s)["kind"] for s in range(20)} == {"ruler_vertical"}
    assert realize_random(builtin, (120, 160), None, 9) == realize_random(builtin, (120, 160), None, 9)


def _assert_matches_naive_warp(image, out, template, flip, scale, angle, centre):
    """The tiled, plane-encoded warp agrees with one full-canvas float warp (up to rounding)."""
    import cv2

    from generator.artefacts.geometry import inverse_coefficients, mip_level, transformed_size

    level_index = mip_level(scale, template.shape)
    source = template.level(level_index).pixels.astype(np.float32)
    canvas_h, canvas_w = transformed_size(template.shape, scale, angle)
    warped = cv2.warpAffine(
        source,
        np.reshape(inverse_coefficients(template.shape, flip, scale, angle, level_index), (2, 3)),
        (canvas_w, canvas_h),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
    )
    frame = np.zeros(image.shape, np.float32)
    top, left = centre[0] - canvas_h // 2, centre[1] - canvas_w // 2
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + canvas_h, image.shape[0]), min(left + canvas_w, image.shape[1])
    frame[y0:y1, x0:x1] = warped[y0 - top : y1 - top, x0 - left : x1 - left]
    naive = np.clip(image + np.rint(frame), 0, 255).astype(np.uint8)
    difference = np.abs(naive.astype(int) - out.astype(int))
    assert difference.max() <= 2, (template.id, flip, scale, angle)
    strong = np.any(np.abs(frame) >= 3, axis=2)  # pixels the naive warp changes clearly
    assert np.all(np.any(out != image, axis=2)[strong]), (template.id, flip, scale, angle)


@pytest.mark.skipif(not (REAL_TEMPLATES / "meta.json").is_file(), reason="real templates not available")
def test_every_real_template_loads_and_renders():
    bank = TemplateBank.load(str(REAL_TEMPLATES))
    assert bank.counts() == {
        "bubble": 11,
        "ruler_horizontal": 6,
        "ruler_vertical": 14,
        "marking_circle": 6,
        "marking_spot": 14,
        "hair": 0,
        "dark_corner": 0,
        "gel_border": 0,
        "patches": 0,
    }
    image = np.full((240, 320, 3), 150, np.uint8)
    for number, template in enumerate(bank.templates.values()):
        changed = 0
        for flip, scale, angle in (("none", 1.0, 0), ("horizontal", 0.6, 33), ("vertical", 1.3, 271)):
            out = image.copy()
            paint_instance(out, template, flip, scale, angle, (120, 160))
            changed += int(np.any(out != image, axis=2).sum())
            if number % 9 == 0:
                _assert_matches_naive_warp(image, out, template, flip, scale, angle, (120, 160))
        assert changed > 0, template.id
    for kind in bank.kinds():
        for seed in range(3):
            out, artefact_mask, record = insert_artefact(image, None, kind, bank, seed)
            assert artefact_mask.any() and record["instances"]
    assert number + 1 == sum(bank.template_counts().values())


from hypothesis import given, settings  # noqa: E402 - beside the one test that uses it
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(
    height=st.integers(64, 260),
    width=st.integers(64, 260),
    kind=st.sampled_from(list(KINDS)),
    seed=st.integers(0, 2**32),
    with_mask=st.booleans(),
)
def test_any_size_kind_and_seed_gives_a_consistent_replayable_insertion(height, width, kind, seed, with_mask):
    bank = TemplateBank.builtin(0)
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    mask = None
    if with_mask:
        mask = np.zeros((height, width), np.uint8)
        top, left = int(rng.integers(0, height - 20)), int(rng.integers(0, width - 20))
        mask[top : top + 20, left : left + 20] = 1
    out, artefact_mask, record = insert_artefact(image, mask, kind, bank, seed)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(artefact_mask, np.any(out != image, axis=2))
    assert record["instances"]
    again, again_mask = render(image, json.loads(json.dumps(record)), bank)
    assert again.tobytes() == out.tobytes() and np.array_equal(again_mask, artefact_mask)
