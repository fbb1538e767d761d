"""synth-ham10000: layout, determinism, class proportions, repeat lesions, class-dependent appearance."""

from __future__ import annotations

import argparse
import csv
import hashlib
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from helpers.sources import SMALL, synthetic_folder
from PIL import Image

from generator import CLASSES
from generator.errors import UserError
from generator.sources import EXPECTED_COUNTS, load_source
from generator.sources.synth import (
    CONFUSERS,
    DIFFICULTY_PRESETS,
    MIN_PER_CLASS,
    PlannedImage,
    class_counts,
    lesion_overlap,
    plan_dataset,
    render_image,
    resolve_difficulty,
    synthesize_ham10000,
)


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --- plan: counts, proportions, lesions -------------------------------------------------------


def test_full_scale_plan_has_the_published_counts():
    plan = plan_dataset(1.0, seed=0)
    for split in ("train", "test"):
        counts = Counter(p.dx for p in plan if p.split == split)
        assert dict(counts) == EXPECTED_COUNTS[split]
    assert sum(p.split == "train" for p in plan) == 10015
    assert sum(p.split == "test" for p in plan) == 1511
    assert len({p.image_id for p in plan}) == len(plan)


@pytest.mark.parametrize("scale", [0.001, 0.01, 0.03, 0.2])
def test_small_scales_keep_proportions_and_every_class(scale):
    for split in ("train", "test"):
        counts = class_counts(scale, split)
        assert set(counts) == set(CLASSES)
        for c, n in counts.items():
            assert n >= MIN_PER_CLASS
            assert n == max(MIN_PER_CLASS, round(scale * EXPECTED_COUNTS[split][c]))


def test_repeat_lesions_share_id_class_and_metadata_within_one_split():
    plan = plan_dataset(1.0, seed=3)
    by_lesion = defaultdict(list)
    for p in plan:
        by_lesion[p.lesion_id].append(p)
    train_lesions = {lid for lid, ps in by_lesion.items() if ps[0].split == "train"}
    repeats = [ps for ps in by_lesion.values() if len(ps) > 1]
    assert len(repeats) > 500
    # HAM10000: 10,015 images of 7,470 lesions (1.34 images per lesion).
    assert 1.2 < 10015 / len(train_lesions) < 1.5
    for ps in repeats:
        assert len({(p.dx, p.split, p.metadata) for p in ps}) == 1


def test_plan_depends_only_on_seed_and_scale():
    assert plan_dataset(0.05, 11) == plan_dataset(0.05, 11)
    assert plan_dataset(0.05, 11) != plan_dataset(0.05, 12)


# --- the written folder -----------------------------------------------------------------------


def test_written_layout_loads_and_matches_the_plan(tmp_path_factory):
    root = synthetic_folder(tmp_path_factory)
    source = load_source(root)
    plan = plan_dataset(SMALL["scale"], SMALL["seed"])
    assert sorted((r.image_id, r.lesion_id, r.dx) for r in source.train) == sorted(
        (p.image_id, p.lesion_id, p.dx) for p in plan if p.split == "train"
    )
    assert sorted((r.image_id, r.dx) for r in source.test) == sorted(
        (p.image_id, p.dx) for p in plan if p.split == "test"
    )
    lesion_counts = Counter(r.lesion_id for r in source.train)
    assert max(lesion_counts.values()) >= 2  # some lesions have repeat images
    with Image.open(source.train[0].image_path) as im:
        assert im.format == "JPEG" and im.size == SMALL["size"]
    for rec in source.train[:5]:
        with Image.open(rec.mask_path) as m:
            assert m.size == SMALL["size"]
            assert set(np.unique(np.asarray(m)).tolist()) <= {0, 255}
            assert np.asarray(m).max() == 255
    assert not list(root.rglob("*_segmentation.png"))[0].parent.name.startswith("ISIC2018")
    assert "NOT real" in (root / "SYNTHETIC.txt").read_text()
    header = next(csv.reader(open(root / "HAM10000_metadata.csv")))
    assert header == ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization", "dataset"]


def test_same_seed_gives_identical_bytes_across_worker_counts(tmp_path, tmp_path_factory):
    reference = synthetic_folder(tmp_path_factory)
    again = synthesize_ham10000(tmp_path / "again", workers=2, progress=False, **SMALL)
    assert _digests(again) == _digests(reference)


def test_other_seed_gives_other_images(tmp_path_factory):
    a = _digests(synthetic_folder(tmp_path_factory))
    b = _digests(synthetic_folder(tmp_path_factory, seed=8))
    assert sum(a.get(k) == v for k, v in b.items() if k.endswith(".jpg")) == 0


def test_default_size_is_600x450():
    planned = PlannedImage(
        "ISIC_0000001", "HAM_0000001", "mel", "train", ("histo", "50.0", "male", "back", "rosendahl")
    )
    rgb, mask = render_image(planned, seed=0)
    assert rgb.shape == (450, 600, 3) and rgb.dtype == np.uint8
    assert mask.shape == (450, 600) and 0.02 < mask.mean() < 0.9


def test_repeat_images_of_one_lesion_differ_but_look_alike():
    base = ("histo", "50.0", "male", "back", "rosendahl")
    a, _ = render_image(PlannedImage("ISIC_0000001", "HAM_0000009", "vasc", "train", base), 0, (96, 72))
    b, _ = render_image(PlannedImage("ISIC_0000002", "HAM_0000009", "vasc", "train", base), 0, (96, 72))
    c, _ = render_image(PlannedImage("ISIC_0000003", "HAM_0000010", "nv", "train", base), 0, (96, 72))
    assert not np.array_equal(a, b)
    colour = [x.reshape(-1, 3).mean(0) for x in (a, b, c)]
    assert np.abs(colour[0] - colour[1]).sum() < np.abs(colour[0] - colour[2]).sum()


def test_class_appearance_is_separable_by_simple_colour_features():
    """Nearest centroid on lesion colour statistics beats chance (1/7) by far: a CNN has signal to learn."""
    X, y = _colour_features(plan_dataset(0.05, seed=21), list(CLASSES), 0.0, per_class=24)
    X = (X - X.mean(0)) / (X.std(0) + 1e-9)
    train = np.arange(len(y)) % 2 == 0
    centroids = np.stack([X[train & (y == k)].mean(0) for k in range(len(CLASSES))])
    pred = np.argmin(((X[~train, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    accuracy = (pred == y[~train]).mean()
    assert accuracy > 0.6, accuracy


def _colour_features(plan, classes, difficulty, per_class=30, seed=21):
    feats, labels = [], []
    for c in classes:
        for p in [q for q in plan if q.dx == c][:per_class]:
            rgb, mask = render_image(p, seed, (64, 48), difficulty)
            x = rgb.reshape(-1, 3).astype(float) / 255
            inside = mask.reshape(-1) > 0
            lesion, skin = x[inside], x[~inside]
            feats.append(
                np.concatenate(
                    [
                        lesion.mean(0) - skin.mean(0),
                        lesion.std(0),
                        [inside.mean()],
                        np.percentile(lesion, 10, axis=0),
                    ]
                )
            )
            labels.append(classes.index(c))
    return np.array(feats), np.array(labels)


def _cross_validated_accuracy(X, y) -> float:
    """Logistic regression, 3-fold stratified cross validation (scikit-learn)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(cross_val_score(model, X, y, cv=3).mean())


def test_difficulty_makes_the_confusable_trio_overlap():
    """nv / mel / bkl: colour features that separate them on the easy twin separate them less and less
    as the difficulty grows (the label never changes, only the appearance)."""
    pytest.importorskip("sklearn", reason="scikit-learn comes with the train / evaluate extras")
    plan = plan_dataset(0.05, seed=21)
    trio = ["nv", "mel", "bkl"]
    accuracy = [
        _cross_validated_accuracy(*_colour_features(plan, trio, resolve_difficulty(d)))
        for d in ("easy", "ham", "hard")
    ]
    assert accuracy[0] > 0.8, accuracy
    assert accuracy[0] > accuracy[1] > accuracy[2], accuracy
    assert accuracy[2] < accuracy[0] - 0.25, accuracy


def test_overlap_weights_follow_difficulty_and_reach():
    lesions = [f"HAM_{i:07d}" for i in range(300)]
    for dx, (confusers, reach) in CONFUSERS.items():
        assert lesion_overlap(dx, lesions[0], 0, 0.0) == (dx, 0.0)  # difficulty 0: nothing drawn
        draws = [lesion_overlap(dx, lid, 0, 0.8) for lid in lesions]
        assert {other for other, _ in draws} <= set(confusers)
        weights = np.array([w for _, w in draws])
        assert weights.min() >= 0 and weights.max() <= 0.8 * reach
        # uniform on [0, d x reach]: the mean is half the top, within 4 standard errors
        assert abs(weights.mean() - 0.4 * reach) < 4 * 0.8 * reach / np.sqrt(12 * len(weights))
        assert lesion_overlap(dx, lesions[1], 0, 0.8) == draws[1]  # a function of (seed, lesion)


def test_difficulty_presets_and_validation():
    assert resolve_difficulty("easy") == 0.0 and resolve_difficulty("0.25") == 0.25
    assert resolve_difficulty(1) == 1.0
    for preset, value in DIFFICULTY_PRESETS.items():
        assert resolve_difficulty(preset) == value
    for bad in ("medium", -0.1, 1.5, float("nan"), True):
        with pytest.raises(UserError, match="--difficulty"):
            resolve_difficulty(bad)


def test_easy_twin_renders_as_before_difficulty_existed():
    """difficulty 0 draws nothing extra: the render equals one without the argument."""
    planned = PlannedImage(
        "ISIC_0000001", "HAM_0000003", "bkl", "train", ("histo", "50.0", "male", "back", "rosendahl")
    )
    assert np.array_equal(render_image(planned, 4, (64, 48))[0], render_image(planned, 4, (64, 48), 0.0)[0])
    assert not np.array_equal(
        render_image(planned, 4, (64, 48), 0.0)[0], render_image(planned, 4, (64, 48), 1.0)[0]
    )


def test_test_split_scales_apart_from_the_training_split():
    base, wider = plan_dataset(0.01, 3), plan_dataset(0.01, 3, test_scale=0.05)
    assert plan_dataset(0.01, 3, test_scale=0.01) == base
    assert Counter(p.dx for p in wider if p.split == "test") == class_counts(0.05, "test")
    assert Counter(p.dx for p in wider if p.split == "train") == Counter(
        p.dx for p in base if p.split == "train"
    )


# --- failures, atomicity and the CLI -----------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"scale": 0}, "--scale"),
        ({"scale": -1}, "--scale"),
        ({"scale": float("nan")}, "--scale"),
        ({"size": "12x"}, "--size"),
        ({"size": (10, 10)}, "--size"),
        ({"seed": -3}, "--seed"),
        ({"workers": 0}, "--workers"),
        ({"test_format": "xml"}, "--test-format"),
        ({"difficulty": "medium"}, "--difficulty"),
        ({"difficulty": 2.0}, "--difficulty"),
        ({"test_scale": 0}, "--test-scale"),
        ({"test_scale": "x"}, "--test-scale"),
    ],
)
def test_bad_arguments_raise_user_error(tmp_path, kwargs, message):
    with pytest.raises(UserError, match=message):
        synthesize_ham10000(
            tmp_path / "out", **{"scale": 0.01, "size": (64, 48), "progress": False, **kwargs}
        )
    assert not (tmp_path / "out").exists()


def test_refuses_non_empty_output_but_keeps_identical_rerun(tmp_path_factory, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("mine")
    with pytest.raises(UserError, match="exists and is not empty"):
        synthesize_ham10000(tmp_path / "busy", progress=False, **SMALL)
    root = synthetic_folder(tmp_path_factory)
    before = _digests(root)
    assert synthesize_ham10000(root, progress=False, **SMALL) == root  # same parameters: kept as is
    assert _digests(root) == before


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    import generator.sources.synth as synth

    calls = {"n": 0}
    real = synth.render_image

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(synth, "render_image", failing)
    with pytest.raises(KeyboardInterrupt):
        synthesize_ham10000(tmp_path / "out", progress=False, **SMALL)
    assert list(tmp_path.iterdir()) == []  # neither the output nor a temporary folder


def test_cli_registers_and_runs(tmp_path):
    from generator import cli_synth

    parser = argparse.ArgumentParser()
    cli_synth.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "synth-ham10000",
            "--out",
            str(tmp_path / "d"),
            "--scale",
            "0.001",
            "--seed",
            "2",
            "--size",
            "48x32",
            "--test-format",
            "ham",
            "--quiet",
        ]
    )
    assert args.func(args) == 0
    source = load_source(tmp_path / "d")
    assert source.synthetic and source.ground_truth_format == "ham"
    assert Image.open(source.test[0].image_path).size == (48, 32)


@pytest.mark.parametrize(
    "argv", [["--scale", "0"], ["--size", "abc"], ["--size", "10x10"], ["--workers", "0"]]
)
def test_cli_bad_arguments_exit_2_with_one_line(tmp_path, capsys, argv):
    from generator import cli

    if "synth-ham10000" not in cli.build_parser()._subparsers._group_actions[0].choices:
        pytest.skip("generator.cli_data does not register synth-ham10000 yet")
    code = cli.main(["synth-ham10000", "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("ham-artefacts synth-ham10000: error: --")
    assert not (tmp_path / "o").exists()
