"""The one Dataset, ``HAMArtefacts``: its (image, target) contract, each target type, joint v2 pipelines,
transform / target_transform, clear errors, and pixels byte-identical to the implementation it replaced
(``HAMArtefacts`` + ``HDF5VariantDataset`` of version 0.2.0, whose outputs the digests below record)."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from helpers.training import digest_arrays as digest  # noqa: E402
from helpers.training import synthetic_rows, write_data_manifest, write_synthetic_variant  # noqa: E402
from torchvision import tv_tensors  # noqa: E402
from torchvision.transforms import v2  # noqa: E402

from generator.errors import UserError  # noqa: E402
from generator.variants import CLEAN_TRAIN  # noqa: E402
from generator.variants.store import VariantReader, decode_image, encode_png_stored  # noqa: E402
from training.data.batches import collate, training_targets  # noqa: E402
from training.data.datasets import TARGET_TYPES, HAMArtefacts  # noqa: E402
from training.data.transforms import box_from_mask, eval_transform, train_transform  # noqa: E402

ARTEFACT_IDS = {"ISIC_9000001", "ISIC_9000002", "ISIC_9000004"}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Nine 160x120 rows of one variant, stored three ways: JPEG (clean rows of real variants), stored
    PNG (artefact rows) and compressed PNG; rows 1, 2 and 4 carry an artefact."""
    from PIL import Image

    rows = synthetic_rows(9, "train", seed=3, size=(160, 120), artefact_ids=ARTEFACT_IDS)
    stored = []
    for i, row in enumerate(rows):
        pixels = decode_image(np.frombuffer(row.image_bytes, np.uint8))
        if i % 3 == 0:
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
            data = buffer.getvalue()
        else:
            data = encode_png_stored(pixels) if i % 3 == 1 else row.image_bytes
        stored.append(replace(row, image_bytes=data))
    folder = tmp_path_factory.mktemp("hamartefacts")
    write_synthetic_variant(folder / f"{CLEAN_TRAIN}.h5", stored, CLEAN_TRAIN)
    write_data_manifest(folder)
    return folder


# --- byte-identical to the code it replaced ----------------------------------------------------------
# Recorded with HDF5VariantDataset / the old HAMArtefacts / the old gradcam._prepare on the fixture above.
DECODED = {
    None: "a4bc97a9a3d9fd68c79957f712d84ac5ae7f9b7e325a84f73a319117c8ed0b68",
    (32, 32): "8f7be8022c689d5f21cda8f5a85c80f039e5462610db44506c610a16d017f0c5",  # 1/2 scale
    (16, 16): "6658aab472e2241b15a89cc0e1033c1bb1287b9dec03699d11c2a827d86a52c7",  # 1/4
    (10, 10): "5dcdb342d0fd4aeb268457de851aea11cd3ae42e81444a3dcf8f2b22f15b0e70",  # 1/8
}
TRAINING_BATCHES = {
    (True, 0.0): "9ca2a6d33d47d8c2dddcbe9758aabf75b5b638f13e9b61726d9b9f5cf52d3b17",
    (True, 0.5): "2f2559fd198120e73295bbfe911d0e4a6a039b461bd4844fe8d55d388edea96a",
    (False, 0.0): "0c780fab4dabb77124c9cb1518ea083f155aced9f5a8690e7cb3ac869bf39838",
    (False, 0.5): "47e62d0e8d851992dee38c20a5fac655fb8b884f49c14382a39fa3a6e6d8dd80",
}


@pytest.mark.parametrize("decode_size", list(DECODED))
def test_decoded_rows_masks_and_boxes_are_byte_identical_to_before(root, decode_size):
    ds = HAMArtefacts(root, CLEAN_TRAIN, target_types=("lesion_mask", "box"), decode_size=decode_size)
    arrays = []
    for i in range(len(ds)):
        image, (mask, box) = ds[i]
        arrays += [image.numpy(), mask.numpy(), box.numpy().reshape(4)]
    assert digest(*arrays) == DECODED[decode_size]


@pytest.mark.parametrize(("with_masks", "augment_artefacts"), list(TRAINING_BATCHES))
def test_training_batches_are_byte_identical_to_before(root, with_masks, augment_artefacts):
    ds = HAMArtefacts(
        root,
        CLEAN_TRAIN,
        target_types=training_targets(with_masks),
        transforms=train_transform(40, float_output=False, augment_artefacts=augment_artefacts),
        decode_size=40,
    )
    torch.manual_seed(11)
    batch = collate([ds[i] for i in range(len(ds))])
    masks = [batch["lesion_mask"].numpy(), batch["box"].numpy()] if with_masks else []
    arrays = (batch["image"].numpy(), batch["label"].numpy(), batch["index"].numpy(), *masks)
    assert digest(*arrays) == TRAINING_BATCHES[(with_masks, augment_artefacts)]


def test_evaluation_gradcam_and_montage_pixels_are_byte_identical_to_before(root):
    from training.evaluation.gradcam import _prepare

    ds = HAMArtefacts(
        root, CLEAN_TRAIN, target_types=training_targets(), transforms=eval_transform(40), decode_size=40
    )
    batch = collate([ds[i] for i in range(len(ds))])
    assert (
        digest(batch["image"].numpy()) == "533f4691691446337778ea055231cd0267e288b9bf2218debdec865841b41403"
    )
    ds = HAMArtefacts(
        root,
        CLEAN_TRAIN,
        target_types=training_targets(True),
        transforms=train_transform(40, float_output=False, policy="dihedral"),
        decode_size=40,
    )
    torch.manual_seed(5)
    batch = collate([ds[i] for i in range(len(ds))])
    assert (
        digest(batch["image"].numpy(), batch["lesion_mask"].numpy(), batch["box"].numpy())
        == "89e077dd3c6e709254c7f13532fedbde2cccbe8765eef533235392f01b3b6844"
    )
    ds = HAMArtefacts(root, CLEAN_TRAIN, target_types="artefact_mask", transforms=eval_transform(40))
    assert (
        digest(*[part for i in range(len(ds)) for part in _prepare(ds, i)])
        == "1d7805bc6f38d8f0d7740cdf4c82911b38fb376a18f97988d6177aae735b6d08"
    )
    plain = HAMArtefacts(root, CLEAN_TRAIN)
    assert (
        digest(*[plain[i][0].permute(1, 2, 0).numpy() for i in range(len(plain))])
        == "0cfbd0d20426091e8ca6c50c569e7d2829a284a1389878295abc53e642818a10"
    )
    assert (
        digest(np.asarray(plain.montage(4, seed=1, size=32)))
        == "5a96d2a60ff1466e46ebba883ad0d733a478770d31b17073789ee1c6dbb19032"
    )


# --- the (image, target) contract --------------------------------------------------------------------
def test_each_target_type(root):
    ds = HAMArtefacts(root, CLEAN_TRAIN, target_types=TARGET_TYPES)
    reader = VariantReader(root / f"{CLEAN_TRAIN}.h5")
    for i in range(len(ds)):
        image, (label, lesion_mask, artefact_mask, box, meta) = ds[i]
        assert type(image) is tv_tensors.Image and image.dtype == torch.uint8 and image.shape == (3, 120, 160)
        assert np.array_equal(image.permute(1, 2, 0).numpy(), reader.image(i))
        assert type(label) is int and label == reader.labels[i]
        assert type(lesion_mask) is tv_tensors.Mask and lesion_mask.dtype == torch.uint8
        assert np.array_equal(lesion_mask.numpy(), reader.lesion_mask(i)) and lesion_mask.any()
        assert type(artefact_mask) is tv_tensors.Mask and artefact_mask.shape == (120, 160)
        assert bool(artefact_mask.any()) == (reader.image_ids[i] in ARTEFACT_IDS)
        assert type(box) is tv_tensors.BoundingBoxes and box.format == tv_tensors.BoundingBoxFormat.XYXY
        assert box.canvas_size == (120, 160) and torch.equal(box[0], box_from_mask(lesion_mask))
        assert meta == {
            "index": i,
            "image_id": reader.image_ids[i],
            "lesion_id": reader.lesion_ids[i],
            "has_artefact": reader.image_ids[i] in ARTEFACT_IDS,
            "kind": "ruler_horizontal" if reader.image_ids[i] in ARTEFACT_IDS else "",
        }
    # a reduced decode brings masks and box to the image's size
    image, (mask, box) = HAMArtefacts(root, CLEAN_TRAIN, target_types=["lesion_mask", "box"], decode_size=32)[
        3
    ]
    assert image.shape[1:] == mask.shape == (60, 80) and box.canvas_size == (60, 80)
    assert torch.equal(box[0], box_from_mask(mask))


def test_one_target_type_is_the_value_several_a_tuple_in_their_order(root):
    assert isinstance(HAMArtefacts(root, CLEAN_TRAIN)[0][1], int)
    assert isinstance(HAMArtefacts(root, CLEAN_TRAIN, target_types=["meta"])[0][1], dict)
    label, meta = HAMArtefacts(root, CLEAN_TRAIN, target_types=("label", "meta"))[5][1]
    meta_first, label_second = HAMArtefacts(root, CLEAN_TRAIN, target_types=("meta", "label"))[5][1]
    assert meta == meta_first and label == label_second and meta["index"] == 5
    assert HAMArtefacts(root, CLEAN_TRAIN)[-1][1] == HAMArtefacts(root, CLEAN_TRAIN)[8][1]
    with pytest.raises(IndexError, match="index 9 out of range"):
        HAMArtefacts(root, CLEAN_TRAIN)[9]


def test_tv_tensors_move_together_through_a_joint_v2_pipeline(root):
    pipeline = v2.Compose([v2.RandomHorizontalFlip(p=1), v2.Resize((60, 40))])
    targets = ("lesion_mask", "artefact_mask", "box", "label")
    plain = HAMArtefacts(root, CLEAN_TRAIN, target_types=targets)
    moved = HAMArtefacts(root, CLEAN_TRAIN, target_types=targets, transforms=pipeline)
    for i in (1, 3):  # an artefact row and a clean one
        image, (lesion, artefact, box, label) = plain[i]
        out, (out_lesion, out_artefact, out_box, out_label) = moved[i]
        assert type(out) is tv_tensors.Image and type(out_lesion) is type(out_artefact) is tv_tensors.Mask
        assert type(out_box) is tv_tensors.BoundingBoxes and out_box.canvas_size == (60, 40)
        assert out_label == label
        for before, after in ((image, out), (lesion, out_lesion), (artefact, out_artefact)):
            expected = v2.functional.resize(v2.functional.horizontal_flip(before), [60, 40])
            assert torch.equal(after, expected)
        # the box was flipped (x0 <- W - x1) and scaled with the image: it still frames the lesion
        x0, y0, x1, y1 = box[0].tolist()
        scale_x, scale_y = 40 / 160, 60 / 120
        expected_box = [(160 - x1) * scale_x, y0 * scale_y, (160 - x0) * scale_x, y1 * scale_y]
        assert out_box[0].tolist() == pytest.approx(expected_box)
        assert (out_box[0] - box_from_mask(out_lesion)).abs().max() <= 1.0
        assert out_artefact.any() == (i == 1)


def test_transform_and_target_transform_act_on_their_part_only(root):
    ds = HAMArtefacts(
        root,
        CLEAN_TRAIN,
        target_types=("label", "lesion_mask"),
        transform=v2.Resize((30, 40)),
        target_transform=lambda target: (target[0] + 100, int(target[1].sum())),
    )
    plain = HAMArtefacts(root, CLEAN_TRAIN, target_types=("label", "lesion_mask"))
    image, (label, mask_area) = ds[2]
    _, (plain_label, plain_mask) = plain[2]
    assert image.shape == (3, 30, 40) and label == plain_label + 100 and mask_area == int(plain_mask.sum())
    # the training transforms hand over a plain tensor and leave the target as the pipeline returns it
    image, (label, meta, mask) = HAMArtefacts(
        root, CLEAN_TRAIN, target_types=training_targets(True), transforms=eval_transform(32)
    )[2]
    assert type(image) is torch.Tensor and image.dtype == torch.float32 and image.shape == (3, 32, 32)
    assert (
        label == plain_label
        and meta["index"] == 2
        and type(mask) is tv_tensors.Mask
        and mask.shape == (32, 32)
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"target_types": "mask"}, "^target_types: unknown 'mask'; valid: label, lesion_mask"),
        ({"target_types": ("label", "boxes")}, "^target_types: unknown 'boxes'"),
        ({"target_types": ()}, "^target_types: none given"),
        ({"target_types": 3}, "^target_types: expected a name or a sequence"),
        ({"transforms": eval_transform(8), "transform": eval_transform(8)}, "^transforms: pass either"),
        ({"transforms": eval_transform(8), "target_transform": int}, "^transforms: pass either"),
        ({"decode_size": 0}, "^decode_size: "),
        ({"decode_size": (32,)}, "^decode_size: "),
        ({"decode_size": "32"}, "^decode_size: "),
        ({"decode_size": (32.0, 32.0)}, "^decode_size: "),
        ({"variant": ""}, "^variant: must be a non-empty string"),
        ({"variant": "train_nothing"}, r"train_nothing\.h5: variant file not found; pass download=True"),
    ],
)
def test_bad_arguments_are_one_line_user_errors(root, arguments, message):
    arguments = {"root": root, "variant": CLEAN_TRAIN, **arguments}
    with pytest.raises(UserError, match=message):
        HAMArtefacts(**arguments)


def test_the_readme_dataset_example_runs_as_written(tmp_path, monkeypatch):
    """README.md's "The dataset" example, verbatim but for the folder (and no download: the files are here)."""
    import re
    from pathlib import Path

    from helpers.training import write_synthetic_data

    data = write_synthetic_data(tmp_path / "data", train_variants=("train_none", "train_all"))
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### The dataset") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code = code.replace('"data/"', repr(str(data))).replace(", download=True", "")
    namespace: dict = {}
    exec(code, namespace)
    image, lesion_mask = namespace["image"], namespace["lesion_mask"]
    assert (
        isinstance(image, tv_tensors.Image)
        and image.dtype == torch.float32
        and image.shape[-2:] == (224, 224)
    )
    assert isinstance(lesion_mask, tv_tensors.Mask) and lesion_mask.shape == (224, 224)
    assert isinstance(namespace["label"], int) and 0 <= namespace["label"] < len(namespace["ds"].classes)
