"""The fast paths of the loader agree with the slow, obvious ones they replace.

- ``generator.variants.store.decode_png_stored`` against Pillow, and it declines anything it did not write;
- ``OpenCVColorJitter`` and ``OpenCVRandomRotation`` against torchvision's own tensor kernels, on
  the same parameters;
- reduced decoding gives clean (JPEG) and artefact (stored PNG) rows the same resolution.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generator.variants.store import decode_png_stored, encode_png, encode_png_stored  # noqa: E402


def smooth_image(rng: np.random.Generator, height: int, width: int, noise: float = 4.0) -> np.ndarray:
    """Lesion-like uint8 RGB: a bicubic blow-up of a few random colours plus a little noise."""
    from PIL import Image

    low = rng.uniform(20, 235, (5, 7, 3)).astype(np.uint8)
    image = np.asarray(Image.fromarray(low).resize((width, height), Image.BICUBIC), dtype=np.float64)
    return np.clip(image + rng.normal(0, noise, image.shape), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------ stored PNG
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (450, 600), (40, 30000)])
def test_decode_png_stored_round_trips_and_matches_pillow(shape):
    from PIL import Image

    rng = np.random.default_rng(shape[0] * shape[1])
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    data = encode_png_stored(image)
    with Image.open(io.BytesIO(data)) as im:
        assert np.array_equal(np.asarray(im.convert("RGB")), image)
    for buffer in (data, np.frombuffer(data, np.uint8), bytearray(data), memoryview(data)):
        decoded = decode_png_stored(buffer)
        assert decoded is not None and np.array_equal(decoded, image)
        assert decoded.flags.writeable and decoded.flags.c_contiguous


def test_decode_png_stored_declines_what_it_did_not_write():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    data = encode_png_stored(image)
    assert decode_png_stored(encode_png(image)) is None  # compressed, filtered PNG
    assert decode_png_stored(encode_png(image[:, :, 0])) is None  # greyscale
    from PIL import Image

    jpeg = io.BytesIO()
    Image.fromarray(image).save(jpeg, format="JPEG")
    assert decode_png_stored(jpeg.getvalue()) is None
    assert decode_png_stored(b"") is None
    assert decode_png_stored(data[:-40]) is None  # truncated inside the pixel data
    corrupt = bytearray(data)
    corrupt[41 + 3] ^= 0xFF  # the first block's length no longer matches its complement
    assert decode_png_stored(bytes(corrupt)) is None


# ------------------------------------------------------------------------------ colour jitter
def _jitter_params(order, brightness=None, contrast=None, saturation=None, hue=None) -> dict:
    import torch

    return {
        "fn_idx": torch.tensor(order),
        "brightness_factor": brightness,
        "contrast_factor": contrast,
        "saturation_factor": saturation,
        "hue_factor": hue,
    }


@pytest.mark.parametrize("seed", range(6))
def test_opencv_colour_jitter_matches_torchvision_per_adjustment(seed):
    import torch
    from torchvision import tv_tensors
    from torchvision.transforms.v2 import functional as F

    from training.data.transforms import OpenCVColorJitter

    rng = np.random.default_rng(seed)
    pixels = smooth_image(rng, 64, 80)
    image = tv_tensors.Image(torch.from_numpy(pixels).permute(2, 0, 1).contiguous())
    jitter = OpenCVColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.04)
    b, c, s = (float(x) for x in rng.uniform(0.8, 1.2, 3))
    h = float(rng.uniform(-0.04, 0.04))
    cases = [
        (_jitter_params([0], brightness=b), F.adjust_brightness(image, b), 1),
        (_jitter_params([1], contrast=c), F.adjust_contrast(image, c), 1),
        (_jitter_params([2], saturation=s), F.adjust_saturation(image, s), 1),
        (_jitter_params([3], hue=h), F.adjust_hue(image, h), 1),
    ]
    for params, expected, tolerance in cases:
        ours = jitter.transform(image, params)
        assert isinstance(ours, tv_tensors.Image) and ours.dtype == torch.uint8 and ours.shape == image.shape
        difference = (ours.int() - expected.int()).abs()
        assert difference.max() <= tolerance, params
        # torchvision truncates to uint8, OpenCV rounds: half a level on average at most
        assert difference.float().mean() < 0.7, params


def test_opencv_colour_jitter_follows_the_drawn_order_and_passes_masks_through():
    import torch
    from PIL import Image
    from torchvision import tv_tensors
    from torchvision.transforms.v2 import functional as F

    from training.data.transforms import OpenCVColorJitter

    pixels = smooth_image(np.random.default_rng(9), 48, 64)
    image = tv_tensors.Image(torch.from_numpy(pixels).permute(2, 0, 1).contiguous())
    jitter = OpenCVColorJitter(brightness=0.5, contrast=0.5)
    # brightness then contrast differs from contrast then brightness once values clip
    for order in ([0, 1, 2, 3], [1, 0, 2, 3]):
        params = _jitter_params(order, brightness=1.5, contrast=0.5)
        expected = image
        for index in order:
            if index == 0:
                expected = F.adjust_brightness(expected, 1.5)
            elif index == 1:
                expected = F.adjust_contrast(expected, 0.5)
        assert (jitter.transform(image, params).int() - expected.int()).abs().max() <= 2
        as_pil = jitter.transform(Image.fromarray(pixels), params)
        assert isinstance(as_pil, Image.Image)
        assert np.array_equal(np.asarray(as_pil), jitter.transform(image, params).permute(1, 2, 0).numpy())
    mask = tv_tensors.Mask(torch.ones(48, 64, dtype=torch.uint8))
    assert jitter.transform(mask, _jitter_params([0, 1, 2, 3], brightness=0.1)) is mask


# ----------------------------------------------------------------------------------- rotation
@pytest.mark.parametrize("shape", [(224, 224), (225, 300), (31, 17)])
def test_opencv_rotation_matches_torchvision(shape):
    import torch
    from torchvision import tv_tensors
    from torchvision.transforms.v2 import functional as F

    from training.data.transforms import OpenCVRandomRotation

    rng = np.random.default_rng(shape[0])
    height, width = shape
    image = tv_tensors.Image(torch.from_numpy(smooth_image(rng, height, width)).permute(2, 0, 1).contiguous())
    mask = torch.zeros(height, width, dtype=torch.uint8)
    mask[height // 4 : 3 * height // 4, width // 5 : width // 2] = 1
    mask = tv_tensors.Mask(mask)
    rotation = OpenCVRandomRotation(180.0)
    for angle in [0.0, 13.7, -45.2, 180.0, *rng.uniform(-180, 180, 8).tolist()]:
        ours_image = rotation.transform(image, {"angle": angle})
        ours_mask = rotation.transform(mask, {"angle": angle})
        assert isinstance(ours_image, tv_tensors.Image) and isinstance(ours_mask, tv_tensors.Mask)
        assert ours_image.shape == image.shape and ours_mask.shape == mask.shape
        expected_mask = F.rotate(mask, angle)
        # nearest neighbour: identical up to ties exactly half-way between two source pixels
        assert (ours_mask == expected_mask).float().mean() > 0.995, angle
        assert (ours_image == F.rotate(image, angle)).all(dim=0).float().mean() > 0.99, angle


def test_opencv_rotation_falls_back_for_other_options():
    import torch
    from torchvision import tv_tensors
    from torchvision.transforms.v2 import functional as F

    from training.data.transforms import OpenCVRandomRotation

    image = tv_tensors.Image(torch.randint(0, 256, (3, 20, 30), dtype=torch.uint8))
    expanded = OpenCVRandomRotation(30.0, expand=True).transform(image, {"angle": 30.0})
    assert expanded.shape == F.rotate(image, 30.0, expand=True).shape != image.shape
    as_float = image.float() / 255
    assert torch.equal(
        OpenCVRandomRotation(30.0).transform(tv_tensors.Image(as_float), {"angle": 30.0}),
        F.rotate(tv_tensors.Image(as_float), 30.0),
    )


# --------------------------------------------------------------------------- reduced decoding
def test_reduced_decode_gives_jpeg_and_stored_png_rows_one_resolution(tmp_path):
    """train_<cls> variants mix clean rows (original JPEG) and artefact rows (stored PNG); decoded
    at different resolutions, sharpness alone would tell the model which images carry artefacts."""
    from PIL import Image

    from generator.variants.store import Row, encode_mask, write_variant
    from training.data.decode import decode_row, jpeg_draft_factor

    rng = np.random.default_rng(4)
    pixels = smooth_image(rng, 450, 600, noise=0.0)
    jpeg = io.BytesIO()
    Image.fromarray(pixels).save(jpeg, format="JPEG", quality=95)
    mask = encode_mask(np.ones((450, 600), bool))
    rows = [
        Row("ISIC_0000000", "HAM_0", 0, jpeg.getvalue(), mask, mask, metadata={"dx": "akiec"}),
        Row(
            "ISIC_0000001",
            "HAM_1",
            0,
            encode_png_stored(pixels),
            mask,
            mask,
            has_artefact=True,
            metadata={"dx": "akiec"},
        ),
    ]
    variant = write_variant(
        tmp_path / "train_akiec.h5",
        rows,
        2,
        {
            "variant": {"name": "train_akiec"},
            "split": "train",
            "seed": 0,
            "source_fingerprint": "test",
            "templates": "none",
        },
    )
    for size, factor in [((224, 224), 2), ((100, 100), 4), ((64, 64), 4), ((300, 225), 2), ((448, 448), 1)]:
        assert jpeg_draft_factor(600, 450, size) == factor
        clean, artefact = (decode_row(stored, size) for stored in (rows[0].image_bytes, rows[1].image_bytes))
        expected = (-(-450 // factor), -(-600 // factor), 3)
        assert clean.shape == artefact.shape == expected, size
        # the same pixels either way, up to JPEG loss and the two ways of averaging
        assert np.abs(clean.astype(np.float32) - artefact.astype(np.float32)).mean() < 1.5
    assert np.array_equal(decode_row(rows[1].image_bytes), pixels)
    # the Dataset reads its rows through decode_row: the same arrays
    from generator.variants.manifest import write_manifest_of_files
    from training.data.datasets import HAMArtefacts

    write_manifest_of_files(variant.parent)  # the Dataset reads a folder only through its manifest
    image, _ = HAMArtefacts(variant.parent, variant.stem, decode_size=(224, 224))[0]
    assert np.array_equal(image.permute(1, 2, 0).numpy(), decode_row(rows[0].image_bytes, (224, 224)))


def test_box_from_mask_matches_the_torch_definition_on_random_masks():
    import torch

    from training.data.transforms import box_from_mask

    def reference(mask):
        height, width = mask.shape[-2:]
        mask2d = mask.reshape(height, width) > 0
        rows, cols = torch.nonzero(mask2d.any(dim=1)).flatten(), torch.nonzero(mask2d.any(dim=0)).flatten()
        if rows.numel() == 0:
            return torch.tensor([0.0, 0.0, float(width), float(height)])
        return torch.tensor([float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)])

    rng = np.random.default_rng(0)
    for dtype in (torch.uint8, torch.bool, torch.int64, torch.float32):
        for _ in range(100):
            height, width = (int(v) for v in rng.integers(1, 60, 2))
            mask = torch.from_numpy(rng.random((height, width)) < rng.choice([0.0, 0.002, 0.05, 0.5])).to(
                dtype
            )
            if rng.random() < 0.5:
                mask = mask[None]
            assert torch.equal(box_from_mask(mask), reference(mask)), (dtype, height, width)


def test_uint8_output_is_the_float_output_before_scaling_and_the_engine_scales_it():
    import torch
    from torchvision import tv_tensors

    from training.data.transforms import eval_transform, train_transform
    from training.run.inference import to_device as _to_device

    image = torch.from_numpy(smooth_image(np.random.default_rng(5), 90, 120)).permute(2, 0, 1)
    mask = tv_tensors.Mask(torch.zeros(90, 120, dtype=torch.uint8))
    mask[20:70, 30:90] = 1
    for make in (train_transform, eval_transform):
        torch.manual_seed(3)
        as_float, float_mask = make(64)(image, mask)
        torch.manual_seed(3)
        as_uint8, uint8_mask = make(64, float_output=False)(image, mask)
        assert as_float.dtype == torch.float32 and as_uint8.dtype == torch.uint8 and as_uint8.is_contiguous()
        assert torch.equal(float_mask, uint8_mask)
        scaled, labels = _to_device(
            {"image": as_uint8[None], "label": torch.tensor([2])}, torch.device("cpu"), channels_last=True
        )
        assert (
            scaled.dtype == torch.float32 and torch.equal(scaled, as_float[None]) and labels.tolist() == [2]
        )
        assert scaled.is_contiguous(memory_format=torch.channels_last)
