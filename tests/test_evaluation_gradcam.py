"""Grad-CAM: maps for all three architectures, the artefact attention ratio, the seeded sample, and
the `gradcam` command end to end on a fabricated data folder and runs folder (tiny random-init models)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pytorch_grad_cam")

from generator import CLASSES  # noqa: E402
from generator.variants.store import Row, encode_mask, encode_png, write_variant  # noqa: E402
from training.evaluation.gradcam import artefact_attention, find_models, grad_cam, sample_images  # noqa: E402

KINDS = ("bubble", "ruler_horizontal", "ruler_vertical", "marking_circle", "marking_spot")


@pytest.fixture
def one_thread():
    # The test machine is small and shared: one intra-op thread avoids oversubscription stalls.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _tiny_model(arch: str):
    """Random-init models of each architecture. The detectors are the registry's torchvision layout
    (ResNet-34 FPN backbone, 7 classes + background, score threshold 0) with fewer RPN proposals, so
    the box head runs on 16 boxes instead of 1000 and the test stays fast on a small CPU."""
    from torchvision.models.detection import FasterRCNN, MaskRCNN
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

    from training.models import build_model

    if arch == "resnet34":
        return build_model(arch, image_size=64)
    detector = {"fasterrcnn_resnet34": FasterRCNN, "maskrcnn_resnet34": MaskRCNN}[arch]
    backbone = resnet_fpn_backbone(backbone_name="resnet34", weights=None, trainable_layers=5)
    return detector(
        backbone,
        num_classes=len(CLASSES) + 1,
        min_size=64,
        max_size=64,
        box_score_thresh=0.0,
        rpn_pre_nms_top_n_test=64,
        rpn_post_nms_top_n_test=16,
    )


@pytest.mark.parametrize("arch", ["resnet34", "fasterrcnn_resnet34", "maskrcnn_resnet34"])
def test_grad_cam_map_has_image_shape_and_is_non_negative(arch, one_thread):
    model = _tiny_model(arch)
    image = torch.rand(3, 64, 72, generator=torch.Generator().manual_seed(1))
    cam, predicted = grad_cam(model, arch, image)
    assert cam.shape == (64, 72)
    assert np.isfinite(cam).all() and (cam >= 0).all()
    assert -1 <= predicted < len(CLASSES)


def test_classifier_cam_targets_the_predicted_class(one_thread):
    from training.models import build_model

    model = build_model("resnet34", image_size=64).eval()
    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = int(model(image[None]).argmax())
    assert grad_cam(model, "resnet34", image)[1] == expected


def test_attention_is_one_for_a_uniform_map():
    rng = np.random.default_rng(0)
    for _ in range(5):
        mask = rng.random((30, 40)) < rng.uniform(0.05, 0.6)
        assert artefact_attention(np.full((30, 40), 0.37), mask) == pytest.approx(1.0)


def test_attention_measures_concentration_on_the_mask():
    mask = np.zeros((10, 10), bool)
    mask[:2] = True  # 20 % of the image
    inside_only = mask.astype(float)
    assert artefact_attention(inside_only, mask) == pytest.approx(1 / 0.2)
    assert artefact_attention(1 - inside_only, mask) == 0.0
    assert math.isnan(artefact_attention(np.zeros((10, 10)), mask))
    assert math.isnan(artefact_attention(np.ones((10, 10)), np.zeros((10, 10), bool)))


def test_sample_covers_every_class_and_kind_and_is_seeded():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, len(CLASSES), 300)
    kinds = np.array(KINDS)[rng.integers(0, len(KINDS), 300)]
    sample = sample_images(labels, kinds, 24, seed=0)
    assert len(sample) == len(set(sample)) == 24
    assert set(labels[sample]) == set(range(len(CLASSES)))
    assert set(kinds[sample]) == set(KINDS)
    assert sample == sample_images(labels, kinds, 24, seed=0)
    assert sample != sample_images(labels, kinds, 24, seed=1)


# --- the gradcam command ------------------------------------------------------------------------


def _write_data(folder, n=14, size=32):
    rng = np.random.default_rng(0)
    clean_rows, artefact_rows = [], []
    for i in range(n):
        image = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        lesion = np.zeros((size, size), np.uint8)
        lesion[8:24, 8:24] = 1
        artefact_mask = np.zeros((size, size), np.uint8)
        artefact_mask[: 4 + i, :12] = 1
        with_artefact = image.copy()
        with_artefact[artefact_mask > 0] = 255
        kind = KINDS[i % len(KINDS)]
        common = {
            "image_id": f"ISIC_{i:07d}",
            "lesion_id": f"HAM_{i:07d}",
            "label": i % len(CLASSES),
            "lesion_mask_bytes": encode_mask(lesion),
        }
        clean_rows.append(
            Row(image_bytes=encode_png(image), artefact_mask_bytes=encode_mask(lesion * 0), **common)
        )
        artefact_rows.append(
            Row(
                image_bytes=encode_png(with_artefact),
                artefact_mask_bytes=encode_mask(artefact_mask),
                has_artefact=True,
                kind=kind,
                record=json.dumps({"kind": kind}),
                **common,
            )
        )
    for name, rows in (("test_none", clean_rows), ("test_all", artefact_rows)):
        write_variant(
            folder / f"{name}.h5",
            rows,
            n,
            {
                "variant": {"name": name},
                "split": "test",
                "seed": 0,
                "source_fingerprint": "test",
                "templates": "test",
            },
        )
    from generator.variants.manifest import write_manifest_of_files

    write_manifest_of_files(folder)  # gradcam reads a data folder only through its manifest
    return folder


def test_gradcam_command_writes_overlays_index_and_attention(tmp_path, one_thread):
    from generator.cli import main
    from training.models import build_model

    data = _write_data(tmp_path / "data")
    for train in ("train_none", "train_bcc"):
        run = tmp_path / "runs" / "resnet34" / train / "fold0"
        run.mkdir(parents=True)
        torch.save(build_model("resnet34", image_size=32).state_dict(), run / "best.pt")
        (run / "config.json").write_text(
            json.dumps({"arch": "resnet34", "image_size": 32, "pretrained": False})
        )
    out = tmp_path / "results"
    assert (
        main(
            ["gradcam", "--runs", str(tmp_path / "runs"), "--data", str(data), "--out", str(out), "--n", "7"]
        )
        == 0
    )
    index = pd.read_csv(out / "gradcam" / "index.csv", keep_default_na=False)
    assert list(index.columns) == [
        "arch",
        "train_variant",
        "image_id",
        "dx",
        "kind",
        "clean_png",
        "artefact_png",
        "attention_clean",
        "attention_artefact",
    ]
    assert len(index) == 2 * 7
    assert set(index["dx"]) == set(CLASSES) and set(index["kind"]) == set(KINDS)
    for rel in (*index["clean_png"], *index["artefact_png"]):
        from PIL import Image

        with Image.open(out / rel) as im:
            assert im.size == (32, 32)
    # At 32 px ResNet-34's layer4 is 1x1, so every map is uniform: attention is exactly 1 (or NaN if
    # the map is all zero), which checks the mask and map bookkeeping end to end.
    for column in ("attention_clean", "attention_artefact"):
        values = index[column].replace("", np.nan).astype(float).dropna()
        assert np.allclose(values, 1.0)
    attention = pd.read_csv(out / "gradcam" / "attention.csv")
    assert list(attention["train_variant"]) == ["train_none", "train_bcc"]
    assert [m[1] for m in find_models(tmp_path / "runs", train_variants=["train_bcc"])] == ["train_bcc"]
    assert (attention["n"] <= 7).all()
    assert np.allclose(attention["attention_mean"].dropna(), 1.0)
    assert json.loads((out / "gradcam" / "index.json").read_text())[0]["image_id"] == index["image_id"][0]
