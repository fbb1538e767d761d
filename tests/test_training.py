"""Training data path: folds, joint transforms, detector scores, prediction tables, sweep planning."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("sklearn")

from helpers.training import write_data_manifest, write_synthetic_data  # noqa: E402

from generator import CLASSES  # noqa: E402
from generator.errors import UserError  # noqa: E402
from generator.variants import CLEAN_TRAIN, list_variants  # noqa: E402
from generator.variants.store import VariantReader  # noqa: E402
from training.models import list_architectures  # noqa: E402


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    torch.set_num_threads(2)
    return write_synthetic_data(tmp_path_factory.mktemp("training_data"), n_train=42, n_test=14)


# --- folds ------------------------------------------------------------------------------------


def test_folds_keep_lesions_together_and_are_identical_across_training_variants(data_dir):
    from training.data.folds import fold_indices, folds_for_data, make_folds

    folds = folds_for_data(data_dir, seed=3)
    assert sorted(folds["fold"].unique()) == [0, 1, 2, 3, 4]
    assert (folds.groupby("lesion_id")["fold"].nunique() == 1).all()
    assert folds["image_id"].is_monotonic_increasing

    # The same assignment whichever variant file (or row order) it is computed from.
    with VariantReader(data_dir / "train_all.h5") as reader:
        from_all = make_folds(reader.image_ids, reader.lesion_ids, reader.metadata["dx"], seed=3)
        order = np.random.default_rng(1).permutation(len(reader))
        shuffled = make_folds(
            [reader.image_ids[i] for i in order],
            [reader.lesion_ids[i] for i in order],
            [reader.metadata["dx"][i] for i in order],
            seed=3,
        )
        all_ids = reader.image_ids
    assert from_all.equals(folds) and shuffled.equals(folds)
    assert not make_folds(folds["image_id"], folds["lesion_id"], folds["dx"], seed=4)["fold"].equals(
        folds["fold"]
    )

    with VariantReader(data_dir / "train_none.h5") as reader:
        none_ids = reader.image_ids
    for k in range(5):
        train_a, held_a = fold_indices(folds, none_ids, k)
        train_b, held_b = fold_indices(folds, all_ids, k)
        assert [none_ids[i] for i in held_a] == [all_ids[i] for i in held_b]
        assert len(set(train_a) & set(held_a)) == 0 and len(train_a) + len(held_a) == len(none_ids)
        held_lesions = set(folds.set_index("image_id").loc[[none_ids[i] for i in held_a], "lesion_id"])
        train_lesions = set(folds.set_index("image_id").loc[[none_ids[i] for i in train_a], "lesion_id"])
        assert not held_lesions & train_lesions


def test_folds_reject_too_few_lesions():
    from training.data.folds import make_folds

    with pytest.raises(UserError, match="lesions"):
        make_folds(["a", "b", "c"], ["L1", "L1", "L2"], ["nv", "nv", "mel"])


# --- joint transforms -------------------------------------------------------------------------


def _random_lesion(rng, height, width):
    yy, xx = np.mgrid[0:height, 0:width]
    cy, cx = rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width
    ry, rx = rng.uniform(0.15, 0.35) * height, rng.uniform(0.15, 0.35) * width
    return ((((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2) <= 1).astype(np.uint8)


@pytest.mark.parametrize("seed", range(12))
def test_train_transform_keeps_image_mask_and_box_aligned(seed):
    """The image is the mask painted grey-white; after random crop/rotate/flip/jitter the bright pixels
    must still be the mask pixels, and the tight box of the transformed mask must frame them."""
    from torchvision import tv_tensors

    from training.data.transforms import box_from_mask, train_transform

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    height, width = int(rng.integers(60, 120)), int(rng.integers(60, 120))
    mask = _random_lesion(rng, height, width)
    image = torch.from_numpy(np.repeat(mask[None] * 230 + 10, 3, axis=0).astype(np.uint8))
    out_image, out_mask = train_transform(64)(image, tv_tensors.Mask(torch.from_numpy(mask)))
    box = box_from_mask(out_mask)

    assert out_image.shape == (3, 64, 64) and out_image.dtype == torch.float32
    assert 0.0 <= out_image.min() and out_image.max() <= 1.0
    assert out_mask.shape == (64, 64) and set(out_mask.unique().tolist()) <= {0, 1}
    bright = out_image.mean(0) > out_image.mean(0).amin() + 0.5 * (
        out_image.mean(0).amax() - out_image.mean(0).amin()
    )
    if out_mask.sum() > 20:
        inter = (bright & (out_mask > 0)).sum().item()
        union = (bright | (out_mask > 0)).sum().item()
        assert inter / union > 0.85, f"image and mask drifted apart (IoU {inter / union:.2f})"
        ys, xs = torch.nonzero(bright, as_tuple=True)
        image_box = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)
        assert (image_box - box).abs().max() <= 3


def test_eval_transform_only_resizes():
    from torchvision import tv_tensors

    from training.data.transforms import box_from_mask, eval_transform

    rng = np.random.default_rng(0)
    mask = tv_tensors.Mask(torch.from_numpy(_random_lesion(rng, 96, 128)))
    image = torch.from_numpy(np.repeat(mask.numpy()[None] * 255, 3, axis=0).astype(np.uint8))
    first = eval_transform(64)(image, mask)
    second = eval_transform(64)(image, mask)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)  # no randomness: no test-time augmentation
    ys, xs = np.nonzero(mask.numpy())
    expected = [xs.min() * 64 / 128, ys.min() * 64 / 96, (xs.max() + 1) * 64 / 128, (ys.max() + 1) * 64 / 96]
    assert np.abs(box_from_mask(first[1]).numpy() - expected).max() <= 1.5


def test_box_from_mask():
    from training.data.transforms import box_from_mask

    mask = torch.zeros(10, 20, dtype=torch.uint8)
    assert box_from_mask(mask).tolist() == [0, 0, 20, 10]  # lesion cropped away: the whole image
    mask[3, 7] = 1
    assert box_from_mask(mask).tolist() == [7, 3, 8, 4]


def test_training_batches_hold_the_contract_fields(data_dir):
    from torch.utils.data import Subset

    from training.data.batches import collate, training_targets
    from training.data.datasets import HAMArtefacts
    from training.data.transforms import box_from_mask, train_transform

    variant = HAMArtefacts(
        data_dir, "train_none", target_types=training_targets(with_masks=True), transforms=train_transform(48)
    )
    dataset = Subset(variant, [3, 5])
    image, (label, meta, mask) = dataset[1]
    assert image.shape == (3, 48, 48) and image.dtype == torch.float32 and type(image) is torch.Tensor
    assert label == variant.reader.labels[5] and meta["image_id"] == variant.reader.image_ids[5]
    assert meta["index"] == 5 and mask.shape == (48, 48)
    batch = collate([dataset[0], dataset[1]])
    assert batch["image"].shape == (2, 3, 48, 48) and batch["index"].tolist() == [3, 5]
    assert batch["image_id"] == [variant.reader.image_ids[3], variant.reader.image_ids[5]]
    assert batch["lesion_mask"].shape == (2, 48, 48) and batch["box"].shape == (2, 4)
    # the detectors' box is the tight box of the transformed mask
    assert all(torch.equal(batch["box"][i], box_from_mask(batch["lesion_mask"][i])) for i in range(2))
    plain_image, (_, _, plain_mask) = HAMArtefacts(
        data_dir, "train_none", target_types=training_targets(True)
    )[0]
    assert plain_image.shape[1:] == plain_mask.shape == (64, 80) and plain_image.dtype == torch.uint8


def test_dataset_without_masks_gives_the_same_images(data_dir):
    """Without the lesion mask (classifier, prediction) the batch has no mask and box but the same images."""
    from training.data.batches import collate, training_targets
    from training.data.datasets import HAMArtefacts
    from training.data.transforms import eval_transform, train_transform

    def dataset(with_masks: bool, transforms):
        return HAMArtefacts(
            data_dir, "train_none", target_types=training_targets(with_masks), transforms=transforms
        )

    with_masks, image_only = dataset(True, eval_transform(40)), dataset(False, eval_transform(40))
    for i in (1, 4):
        assert torch.equal(with_masks[i][0], image_only[i][0])
    batch = collate([image_only[1], image_only[4]])
    assert "lesion_mask" not in batch and "box" not in batch and batch["image"].shape == (2, 3, 40, 40)
    # the training augmentations draw the same random parameters with or without the mask
    torch.manual_seed(7)
    a = dataset(False, train_transform(32))[2][0]
    torch.manual_seed(7)
    assert torch.equal(a, dataset(True, train_transform(32))[2][0])


def test_reduced_jpeg_decode_matches_full_decode(tmp_path):
    """decode_size decodes JPEG rows at a reduced DCT scale: same content, far fewer pixels decoded."""
    import io

    from PIL import Image

    from generator.variants.store import Row, encode_mask, write_variant
    from training.data.datasets import HAMArtefacts
    from training.data.decode import decode_row
    from training.data.transforms import eval_transform

    rng = np.random.default_rng(0)
    rows = []
    for i in range(3):
        low = rng.uniform(40, 230, (6, 8, 3)).astype(np.uint8)  # smooth, lesion-like
        buf = io.BytesIO()
        Image.fromarray(low).resize((256, 192), Image.BICUBIC).save(buf, format="JPEG", quality=90)
        mask = np.zeros((192, 256), bool)
        mask[50:150, 60:200] = True
        rows.append(
            Row(
                f"ISIC_{i:07d}",
                f"HAM_{i:07d}",
                i,
                buf.getvalue(),
                encode_mask(mask),
                encode_mask(np.zeros_like(mask)),
                metadata={"dx": "akiec"},
            )
        )
    variant = write_variant(
        tmp_path / f"{CLEAN_TRAIN}.h5",
        rows,
        len(rows),
        {
            "variant": {"name": CLEAN_TRAIN},
            "split": "train",
            "seed": 0,
            "source_fingerprint": "test",
            "templates": "none",
        },
    )
    write_data_manifest(tmp_path)
    full = HAMArtefacts(tmp_path, variant.stem, transform=eval_transform(48))
    reduced = HAMArtefacts(tmp_path, variant.stem, transform=eval_transform(48), decode_size=(48, 48))
    assert decode_row(reduced.reader.image_bytes(0), (48, 48)).shape == (48, 64, 3)  # 1/4 scale covers 48
    for i in range(3):
        a, b = full[i][0], reduced[i][0]
        assert a.shape == b.shape == (3, 48, 48) and b.is_contiguous()
        assert (a - b).abs().mean() < 0.02
    image, mask = HAMArtefacts(tmp_path, variant.stem, target_types="lesion_mask", decode_size=48)[0]
    assert mask.shape == image.shape[1:] == (48, 64)


# --- detector -> class scores -----------------------------------------------------------------


def test_detector_rule_on_constructed_detections():
    from training.models.detector_scores import NO_DETECTION, image_scores

    detections = [
        # classes are detector labels - 1; the top detection (0.9, label 3 -> class 2) decides y_pred
        {"labels": torch.tensor([3, 1, 3, 6]), "scores": torch.tensor([0.9, 0.5, 0.2, 0.7])},
        {"labels": torch.tensor([], dtype=torch.int64), "scores": torch.tensor([])},  # nothing found
        {"labels": np.array([7, 7]), "scores": np.array([0.1, 0.3])},
    ]
    scores, y_pred = image_scores(detections, num_classes=7)
    np.testing.assert_allclose(scores[0], [0.5, 0, 0.9, 0, 0, 0.7, 0])
    assert y_pred[0] == 2
    np.testing.assert_allclose(scores[1], np.full(7, 1 / 7))
    assert y_pred[1] == NO_DETECTION and NO_DETECTION not in range(7)  # counted incorrect
    np.testing.assert_allclose(scores[2], [0, 0, 0, 0, 0, 0, 0.3])
    assert y_pred[2] == 6


def test_gather_predictions_drops_sampler_padding():
    from training.run.engine import Dist, gather_predictions

    # DistributedSampler pads by repeating the first indices.
    indices = np.array([4, 0, 2, 1, 3, 0])
    scores = np.eye(7)[[4, 0, 2, 1, 3, 0]]
    merged_idx, merged_scores, merged_pred = gather_predictions(Dist(), indices, scores, indices.copy())
    assert merged_idx.tolist() == [0, 1, 2, 3, 4]
    assert merged_scores.argmax(1).tolist() == [0, 1, 2, 3, 4] and merged_pred.tolist() == [0, 1, 2, 3, 4]


def test_macro_pr_auc_and_prior_baseline():
    from training.run.engine import macro_pr_auc, prior_pr_auc

    y = np.array([0, 0, 1, 2, 2, 2])
    assert macro_pr_auc(y, np.eye(7)[y]) == pytest.approx(1.0)
    assert prior_pr_auc(y) == pytest.approx(np.mean([2 / 6, 1 / 6, 3 / 6]))


# --- prediction tables ------------------------------------------------------------------------


def test_prediction_tables_have_one_row_per_test_image(data_dir, tmp_path):
    from generator.variants import list_variants
    from training.models import build_model
    from training.run.predict import COLUMNS, predict_variants, read_predictions

    torch.manual_seed(0)
    model = build_model("resnet34", image_size=32).eval()
    written = predict_variants(
        model, "resnet34", data_dir, tmp_path / "predictions", 32, batch_size=16, progress=False
    )
    assert [p.stem for p in written] == list_variants("test") and len(written) == 13
    clean = read_predictions(tmp_path / "predictions" / "test_none.csv")
    for path in written:
        table = read_predictions(path)
        with VariantReader(data_dir / f"{path.stem}.h5") as reader:
            assert tuple(table.columns) == COLUMNS
            assert len(table) == len(reader) and table["image_id"].is_unique
            assert table["image_id"].tolist() == sorted(reader.image_ids)
            truth = {i: int(reader.labels[reader.index_of(i)]) for i in reader.image_ids}
            assert table["y_true"].tolist() == [truth[i] for i in table["image_id"]]
            assert table["has_artefact"].sum() == reader.has_artefact.sum()
            assert set(table.loc[table["has_artefact"] == 1, "artefact_kind"]) <= {"ruler_horizontal"}
            assert (table.loc[table["has_artefact"] == 0, "artefact_kind"] == "").all()
        scores = table[[f"score_{c}" for c in CLASSES]].to_numpy()
        np.testing.assert_allclose(scores.sum(1), 1.0, atol=1e-5)
        assert (table["y_pred"] == scores.argmax(1)).all()
        # a clean image gets the same prediction in every variant
        same = table["has_artefact"] == 0
        np.testing.assert_array_equal(scores[same], clean[[f"score_{c}" for c in CLASSES]].to_numpy()[same])


def test_missing_test_variant_is_a_user_error(data_dir, tmp_path):
    import shutil

    from training.run.predict import open_test_variants

    assert list(open_test_variants(data_dir)) == list_variants("test")
    with pytest.raises(UserError, match="no manifest"):
        open_test_variants(tmp_path)
    copy = Path(shutil.copytree(data_dir, tmp_path / "copy"))
    (copy / "test_40.h5").unlink()
    with pytest.raises(UserError, match=r"test_40\.h5: missing \(manifest.json lists it"):
        open_test_variants(copy)
    with pytest.raises(UserError, match="--test-variants: unknown test variant 'test_41'"):
        open_test_variants(copy, ["test_41"])


# --- sweep planning ---------------------------------------------------------------------------


def test_sweep_plans_135_jobs_and_selects(data_dir, tmp_path):
    from training.run.engine import TrainConfig
    from training.run.sweep import load_jobs, plan, run_all, select

    jobs_file = plan(data_dir, tmp_path / "runs", "paper")
    jobs = load_jobs(jobs_file)
    assert len(jobs) == 135 and [j["index"] for j in jobs] == list(range(135))
    assert len({(j["arch"], j["train_variant"], j["fold"]) for j in jobs}) == 135
    assert jobs[0]["run_dir"].endswith("runs/resnet34/train_none/fold0")
    for job in jobs[:3]:
        TrainConfig.from_dict(job["config"]).validate()
    picked = select(
        jobs, archs=["maskrcnn_resnet34"], train_variants=["train_mel", "train_all"], folds=[1, 3]
    )
    assert len(picked) == 4 and {j["fold"] for j in picked} == {1, 3}
    with pytest.raises(UserError, match="--archs"):
        select(jobs, archs=["vgg16"])

    # --all skips finished jobs (DONE marker) without training anything
    for job in picked:
        (tmp_path / job["run_dir"]).mkdir(parents=True, exist_ok=True)
        (tmp_path / job["run_dir"] / "DONE").write_text(json.dumps({"arch": job["arch"]}))
    results = run_all(
        jobs_file,
        archs=["maskrcnn_resnet34"],
        train_variants=["train_mel", "train_all"],
        folds=[1, 3],
        progress=False,
    )
    assert [r[1]["skipped"] for r in results] == [True] * 4

    tiny = load_jobs(plan(data_dir, tmp_path / "tiny", "tiny"))
    assert [(j["arch"], j["train_variant"], j["fold"]) for j in tiny] == [
        (arch, variant, 0) for arch in list_architectures() for variant in (CLEAN_TRAIN, "train_nv")
    ]
    assert all(j["config"]["threads"] == 2 for j in tiny)


def test_showcase_plan_lists_the_augmented_conditions_in_their_own_run_folders(tmp_path):
    from training.data.conditions import condition_label
    from training.run.engine import TrainConfig, run_dir_for
    from training.run.sweep import PROFILES, load_jobs, plan

    (tmp_path / "data").mkdir()
    jobs = load_jobs(plan(tmp_path / "data", tmp_path / "runs", "showcase"))
    grid = PROFILES["showcase"]["grid"]
    # one job per (entry, fold) of the grid, in the grid's order, every run folder distinct
    expected = [
        (arch, condition_label(variant, extra[0]["augment_artefacts"] if extra else 0.0), fold)
        for arch, variant, folds, *extra in grid
        for fold in folds
    ]
    assert [(j["arch"], j["condition"], j["fold"]) for j in jobs] == expected
    assert len({j["run_dir"] for j in jobs}) == len(jobs)
    runs = (tmp_path / "runs").resolve()
    for job in jobs:
        config = TrainConfig.from_dict(job["config"])
        config.validate()
        assert job["run_dir"] == str(
            run_dir_for(runs, job["arch"], job["train_variant"], job["fold"], config.augment_artefacts)
        )
        augmented = job["condition"].endswith("+aug")
        assert augmented == (config.augment_artefacts > 0)
        assert job["run_dir"].endswith(f"resnet34/{job['condition']}/fold{job['fold']}") or not augmented
    remedy = {(j["condition"], j["fold"]): j for j in jobs if j["condition"].endswith("+aug")}
    assert sorted(remedy) == [
        ("train_none+aug", 0),
        ("train_none+aug", 1),
        ("train_nv+aug", 0),
        ("train_nv+aug", 1),
    ]
    for job in remedy.values():
        assert job["arch"] == "resnet34" and job["train_variant"] == job["condition"].removesuffix("+aug")
        assert job["config"]["augment_artefacts"] == 0.5 and job["config"]["augment_templates"] == "builtin"
        plain = next(
            j
            for j in jobs
            if (j["arch"], j["condition"], j["fold"]) == ("resnet34", job["train_variant"], job["fold"])
        )
        # the same training otherwise: only the augmentation differs from the plain run of that fold
        assert {k: v for k, v in job["config"].items() if not k.startswith("augment_")} == plain["config"]
    # deterministic: planning again writes the very same file
    first = (tmp_path / "runs" / "jobs.jsonl").read_bytes()
    plan(tmp_path / "data", tmp_path / "runs", "showcase")
    assert (tmp_path / "runs" / "jobs.jsonl").read_bytes() == first
    # selectors: a plain name keeps both conditions, a condition label only its own
    both = load_jobs(
        plan(tmp_path / "data", tmp_path / "sel", "showcase", archs=["resnet34"], train_variants=["train_nv"])
    )
    assert {j["condition"] for j in both} == {"train_nv", "train_nv+aug"}
    only = load_jobs(plan(tmp_path / "data", tmp_path / "sel", "showcase", train_variants=["train_nv+aug"]))
    assert {j["condition"] for j in only} == {"train_nv+aug"} and len(only) == 2


def test_an_override_that_merges_plain_and_augmented_jobs_is_refused(tmp_path):
    from training.run.sweep import plan

    (tmp_path / "data").mkdir()
    with pytest.raises(UserError, match="would share .*train_none\\+aug/fold0"):
        plan(tmp_path / "data", tmp_path / "runs", "showcase", overrides={"augment_artefacts": 0.3})
    assert not (tmp_path / "runs" / "jobs.jsonl").exists()


def test_train_writes_an_augmented_run_beside_the_plain_one(tmp_path):
    from training.data.conditions import base_variant, condition_label
    from training.run.engine import run_dir_for

    assert (
        condition_label("train_nv", 0.0) == "train_nv" and condition_label("train_nv", 0.5) == "train_nv+aug"
    )
    assert base_variant("train_nv+aug") == "train_nv" and base_variant("train_nv") == "train_nv"
    plain = run_dir_for(tmp_path, "resnet34", "train_nv", 1)
    augmented = run_dir_for(tmp_path, "resnet34", "train_nv", 1, 0.5)
    assert plain == tmp_path / "resnet34" / "train_nv" / "fold1"
    assert augmented == tmp_path / "resnet34" / "train_nv+aug" / "fold1"


@pytest.mark.parametrize(
    ("flags", "folder"),
    [
        ([], "train_nv"),
        (["--augment-artefacts", "0.5"], "train_nv+aug"),
        (["--augment-artefacts", "0"], "train_nv"),
    ],
)
def test_cli_train_picks_the_condition_folder(tmp_path, monkeypatch, capsys, flags, folder):
    import training.run.engine
    from generator.cli import main

    seen = []
    monkeypatch.setattr(
        training.run.engine,
        "train",
        lambda config, run_dir, progress, wait: seen.append((config, run_dir)) or {},
    )
    assert (
        main(
            [
                "train",
                "--data",
                str(tmp_path),
                "--out",
                str(tmp_path / "runs"),
                "--arch",
                "resnet34",
                "--train-variant",
                "train_nv",
                "--fold",
                "2",
                "--profile",
                "tiny",
                "--quiet",
                *flags,
            ]
        )
        == 0
    )
    ((config, run_dir),) = seen
    assert run_dir == tmp_path / "runs" / "resnet34" / folder / "fold2"
    assert config.train_variant == "train_nv"  # the data it trains on; the folder says how


def test_cli_sweep_plan_and_bad_input(data_dir, tmp_path, capsys):
    from generator.cli import main

    assert (
        main(
            [
                "sweep",
                "plan",
                "--data",
                str(data_dir),
                "--out",
                str(tmp_path / "r"),
                "--profile",
                "tiny",
                "--archs",
                "resnet34",
                "--train-variants",
                CLEAN_TRAIN,
                "train_all",
                "--folds",
                "0",
                "2",
            ]
        )
        == 0
    )
    assert "4 jobs" in capsys.readouterr().out
    assert (
        main(
            [
                "sweep",
                "plan",
                "--data",
                str(data_dir),
                "--out",
                str(tmp_path / "r"),
                "--train-variants",
                "train_bogus",
            ]
        )
        == 2
    )
    assert "train_bogus" in capsys.readouterr().err
    assert main(["sweep", "run", "--out", str(tmp_path / "r"), "--index", "99"]) == 2
    assert (
        main(
            ["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r"), "--arch", "resnet34"]
        )
        == 2
    )
    assert "not found" in capsys.readouterr().err


def test_build_model_registry_and_weights(tmp_path):
    from training.models import MODELS, build_model, list_models

    assert list_models() == list_architectures() == list(MODELS)
    with pytest.raises(UserError, match="unknown architecture"):
        build_model("vgg16")
    # ImageNet weights (here: any ResNet-34 state dict) load into the classifier and the detector backbone.
    torch.manual_seed(0)
    source = build_model("resnet34", num_classes=1000)
    path = tmp_path / "resnet34-b627a593.pth"
    torch.save(source.state_dict(), path)
    classifier = build_model("resnet34", weights=path)
    assert torch.equal(classifier.layer4[0].conv1.weight, source.layer4[0].conv1.weight)
    assert classifier.fc.out_features == 7
    detector = build_model("fasterrcnn_resnet34", image_size=64, weights=path)
    assert torch.equal(detector.backbone.body.layer2[0].conv1.weight, source.layer2[0].conv1.weight)
    assert detector.roi_heads.box_predictor.cls_score.out_features == 8
    assert detector.transform.min_size == (64,) and detector.transform.max_size == 64
    assert not detector.backbone.body.conv1.weight.requires_grad  # frozen stem with ImageNet weights
    with pytest.raises(UserError, match="--weights"):
        from training.models import resolve_weights

        resolve_weights(tmp_path / "absent.pth")


def test_showcase_plan_is_its_own_grid_with_replicated_runs(data_dir, tmp_path):
    from training.run.engine import TrainConfig
    from training.run.sweep import PROFILES, load_jobs, plan

    jobs = load_jobs(plan(data_dir, tmp_path / "runs", "showcase"))
    keys = [(j["arch"], j["condition"], j["fold"]) for j in jobs]
    assert len(keys) == len(set(keys)) == sum(len(entry[2]) for entry in PROFILES["showcase"]["grid"])
    runs_of = lambda arch, variant: sum(k[:2] == (arch, variant) for k in keys)  # noqa: E731
    # the minimum: >= 3 runs each of train_none / train_nv, >= 1 of train_all / train_mel, detectors
    assert runs_of("resnet34", CLEAN_TRAIN) >= 3 and runs_of("resnet34", "train_nv") >= 3
    assert runs_of("resnet34", "train_all") >= 1 and runs_of("resnet34", "train_mel") >= 1
    for arch in ("fasterrcnn_resnet34", "maskrcnn_resnet34"):
        assert runs_of(arch, CLEAN_TRAIN) >= 1 and runs_of(arch, "train_nv") >= 1
    # the remedy conditions (issue 14): on-the-fly artefacts on the unbiased and the nv-biased data
    assert runs_of("resnet34", "train_none+aug") >= 1 and runs_of("resnet34", "train_nv+aug") >= 1
    for job in jobs:
        TrainConfig.from_dict(job["config"]).validate()
        assert job["config"]["augment"] == "dihedral" and job["config"]["profile"] == "showcase"
    # selectors narrow the profile's own grid
    picked = load_jobs(plan(data_dir, tmp_path / "picked", "showcase", archs=["resnet34"], folds=[1]))
    assert {(j["arch"], j["fold"]) for j in picked} == {("resnet34", 1)}
    with pytest.raises(UserError, match="leaves no job"):
        plan(data_dir, tmp_path / "none", "showcase", archs=["resnet34"], folds=[4])


def test_sweep_run_reports_each_finished_run_with_an_eta(data_dir, tmp_path, monkeypatch, caplog):
    import training.run.sweep as sweep

    jobs_file = sweep.plan(data_dir, tmp_path / "runs", "tiny")
    trained = []

    def fake_run(job, progress=True):
        trained.append(job["index"])
        return {"best_val_macro_pr_auc": 0.5}

    monkeypatch.setattr(sweep, "run_job", fake_run)
    clock = iter(float(t) for t in range(0, 1000, 10))  # every run of any arch takes 10 "seconds"
    monkeypatch.setattr("time.perf_counter", lambda: next(clock))
    with caplog.at_level("INFO", logger="training.run.sweep"):
        sweep.run_all(jobs_file, progress=False)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == len(trained) == 6
    assert lines[0].startswith("[1/6] resnet34 train_none fold0: 10 s") and "ETA 50 s" in lines[0]
    assert lines[-1].startswith("[6/6]") and lines[-1].endswith("ETA 0 s")


def test_dihedral_policy_moves_image_and_mask_by_square_symmetries_only():
    from training.data.transforms import AUGMENT_POLICIES, train_transform

    assert set(AUGMENT_POLICIES) == {"paper", "dihedral"}
    from torchvision import tv_tensors

    from training.data.transforms import box_from_mask

    transform = train_transform(32, float_output=False, policy="dihedral")
    image = torch.full((3, 48, 48), 200, dtype=torch.uint8)
    mask = tv_tensors.Mask(torch.zeros(48, 48, dtype=torch.uint8))
    mask[10:20, 5:30] = 1
    for seed in range(20):
        torch.manual_seed(seed)
        out, out_mask = transform(image, mask)
        box = box_from_mask(out_mask)
        assert out.shape == (3, 32, 32) and out.dtype == torch.uint8
        assert int(out.min()) == 200  # no black corners (the paper's free rotation fills them with 0)
        assert out_mask.sum() > 0
        x0, y0, x1, y1 = box.tolist()
        assert out_mask[int(y0) : int(y1), int(x0) : int(x1)].sum() == out_mask.sum()
    with pytest.raises(ValueError, match="augment policy"):
        train_transform(32, policy="fancy")


# --- profiles, flags and logging --------------------------------------------------------------

# The profiles as training/run/sweep.py held them in Python dicts before they became TOML files (0.2.0):
# the SHA-256 of the repr of _canonical(PROFILES), recorded before the move.
RECORDED_PROFILES_SHA256 = "642b779ff960d3baf3834da9deacc32d44ec2a9986cc183970b3e332dc67583b"


def _canonical(value):
    """Sorted keys; the kind of every sequence and scalar kept (a tuple is not a list, 64 not 64.0)."""
    if isinstance(value, dict):
        return tuple(sorted((key, _canonical(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(_canonical(item) for item in value))
    return value


def test_profile_files_load_as_exactly_the_settings_they_replaced():
    import hashlib

    from training.run.config import TrainConfig
    from training.run.sweep import PROFILES, profile_config

    assert sorted(PROFILES) == ["paper", "showcase", "tiny"]
    assert hashlib.sha256(repr(_canonical(PROFILES)).encode()).hexdigest() == RECORDED_PROFILES_SHA256
    # what TOML cannot write directly: None ("all") and tuples (arrays)
    assert PROFILES["paper"]["train_variants"] is None and PROFILES["paper"]["folds"] == (0, 1, 2, 3, 4)
    assert profile_config("tiny", "resnet34")["max_val_images"] is None
    assert profile_config("tiny", "maskrcnn_resnet34")["max_val_images"] == 32
    assert PROFILES["showcase"]["grid"][4] == (
        "resnet34",
        CLEAN_TRAIN,
        (0, 1),
        {"augment_artefacts": 0.5, "augment_templates": "builtin"},
    )
    for name in PROFILES:  # every profile gives every architecture a valid configuration
        for arch in list_architectures():
            TrainConfig.from_dict({**profile_config(name, arch), "arch": arch, "data": "d"}).validate()


def _train_options() -> dict:
    from generator.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    return {option: action for action in commands["train"]._actions for option in action.option_strings}


def test_every_training_flag_has_help_and_the_choices_of_its_registry():
    from generator.variants import list_variants
    from training.data.transforms import AUGMENT_POLICIES
    from training.run.config import FIELDS, flag_of
    from training.run.optim import OPTIMIZERS, SCHEDULES

    options = _train_options()
    overrides = [name for name, spec in FIELDS.items() if spec.metadata["override"]]
    assert {"epochs", "optimizer", "schedule", "augment", "device", "amp", "threads"} <= set(overrides)
    for name in overrides:
        flag = "--no-amp" if name == "amp" else flag_of(name)
        assert options[flag].help and options[flag].default is None, flag  # None: keep the profile's
    expected = {
        "--arch": list_architectures(),
        "--train-variant": list_variants("train"),
        "--optimizer": list(OPTIMIZERS),
        "--schedule": list(SCHEDULES),
        "--augment": list(AUGMENT_POLICIES),
    }
    for flag, names in expected.items():
        assert list(options[flag].choices) == names, flag
        assert "bogus" not in options[flag].choices
    assert options["--epochs"].type is int and options["--max-train-images"].type is int
    assert options["--lr"].type is float and options["--augment-artefacts"].type is float
    assert options["--no-amp"].const is False and options["--no-predict"].default is True


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--optimizer", "adam"], "--optimizer"),
        (["--schedule", "linear"], "--schedule"),
        (["--augment", "fancy"], "--augment"),
        (["--train-variant", "train_bogus"], "--train-variant"),
        (["--device", "tpu"], "--device"),
        (["--epochs", "0"], "--epochs"),
        (["--workers", "-1"], "--workers"),
        (["--augment-artefacts", "1.5"], "--augment-artefacts"),
        (["--epochs", "many"], "--epochs"),
    ],
)
def test_a_bad_flag_is_one_line_exit_2_before_any_data_is_read(tmp_path, capsys, monkeypatch, flags, named):
    import training.run.engine
    from generator.cli import main

    monkeypatch.setattr(training.run.engine, "setup", lambda *a: pytest.fail("training set up"))
    argv = [
        "train",
        "--data",
        str(tmp_path / "nowhere"),
        "--out",
        str(tmp_path / "runs"),
        "--arch",
        "resnet34",
    ]
    assert main([*argv, *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and named in err and "Traceback" not in err, err
    assert "nowhere" not in err  # refused before the data folder was looked at
    assert not (tmp_path / "runs").exists()


def test_the_config_refuses_a_bad_value_from_python_too():
    from training.run.config import TrainConfig

    for change, message in (
        ({"optimizer": "adam"}, "--optimizer: 'adam' is not one of sgd, adamw"),
        ({"schedule": "linear"}, "--schedule: 'linear' is not one of cosine, step"),
        ({"arch": "vgg16"}, "--arch: 'vgg16' is not one of"),
        ({"fold": 5}, r"--fold: 5 is outside 0\.\.4"),
        ({"patience": 0}, "--patience: must be at least 1"),
        ({"device": "cuda:x"}, "--device: 'cuda:x' is not auto, cpu, cuda or cuda:N"),
    ):
        with pytest.raises(UserError, match=message):
            TrainConfig.from_dict({"arch": "resnet34", "data": "d", **change}).validate()
    TrainConfig(arch="resnet34", data="d", device="cuda:1").validate()


@pytest.mark.parametrize(
    ("before", "after", "progress", "debug"),
    [
        ([], [], True, False),
        (["--quiet"], [], False, False),
        (["-q"], [], False, False),
        ([], ["--quiet"], False, False),  # the command's own --quiet
        (["--verbose"], [], True, True),
        (["-v"], ["--quiet"], False, False),
    ],
)
def test_quiet_and_verbose_set_what_the_cli_shows(
    data_dir, tmp_path, monkeypatch, capsys, before, after, progress, debug
):
    """Library modules log; the CLI shows their records on stderr, message only: info by default, warnings
    only with --quiet (which also turns the progress bars off), debug too with --verbose."""
    import logging

    import training.run.sweep as sweep
    from generator.cli import main

    jobs = sweep.plan(data_dir, tmp_path / "runs", "tiny", archs=["resnet34"], train_variants=[CLEAN_TRAIN])
    seen = []

    def fake_run(job, progress=True):
        seen.append(progress)
        logging.getLogger("training.run.engine").debug("an epoch line")
        logging.getLogger("training.run.engine").warning("a warning")
        return {"best_val_macro_pr_auc": 0.5}

    monkeypatch.setattr(sweep, "run_job", fake_run)
    assert main([*before, "sweep", "run", "--jobs", str(jobs), "--all", *after]) == 0
    err = capsys.readouterr().err.splitlines()
    assert ("[1/1] resnet34 train_none fold0: " in "\n".join(err)) == progress
    assert ("an epoch line" in err) == debug and "a warning" in err
    assert seen == [progress]
    assert logging.getLogger("training").handlers == []  # nothing left behind after the command


def test_quiet_and_verbose_exclude_each_other(capsys):
    from generator.cli import main

    assert main(["--quiet", "--verbose", "list"]) == 2
    assert "not allowed with" in capsys.readouterr().err
