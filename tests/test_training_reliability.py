"""Training never silently sees less data than it should (issue 13, item 0).

A model input larger than the stored images once made the decode path raise StopIteration, which a
DataLoader takes for the end of the epoch: training "ran" on zero images with a NaN loss and exit 0.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("sklearn")

from helpers.training import small_cnn as _small_cnn  # noqa: E402
from helpers.training import (  # noqa: E402
    synthetic_rows,
    write_data_manifest,
    write_synthetic_data,
    write_synthetic_variant,
)

from generator.errors import RunFailed  # noqa: E402
from generator.variants import ALL_TEST, CLEAN_TRAIN  # noqa: E402


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    torch.set_num_threads(2)
    # stored images are 80 x 64: every model input below is larger
    return write_synthetic_data(
        tmp_path_factory.mktemp("reliability_data"), n_train=42, n_test=7, train_variants=(CLEAN_TRAIN,)
    )


def _jpeg(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


@pytest.fixture(scope="module")
def mixed_variant(tmp_path_factory):
    """Rows stored as JPEG (clean rows of real variants), stored PNG (artefact rows) and compressed PNG."""
    from generator.variants.store import decode_image, encode_png_stored

    rows = synthetic_rows(9, "train", size=(80, 64))
    out = []
    for i, row in enumerate(rows):
        pixels = decode_image(np.frombuffer(row.image_bytes, np.uint8))
        kind = i % 3
        data = _jpeg(pixels) if kind == 0 else encode_png_stored(pixels) if kind == 1 else row.image_bytes
        out.append(replace(row, image_bytes=data))
    path = write_synthetic_variant(tmp_path_factory.mktemp("mixed") / f"{CLEAN_TRAIN}.h5", out, CLEAN_TRAIN)
    write_data_manifest(path.parent)
    return path


@pytest.mark.parametrize(
    ("width", "height", "size", "factor"),
    [
        (80, 64, (128, 128), 1),
        (80, 64, (81, 10), 1),
        (80, 64, (80, 64), 1),
        (600, 450, (224, 224), 2),
        (600, 450, (64, 64), 4),
        (600, 450, (32, 32), 8),
        (6000, 4500, (32, 32), 8),
        (1, 1, (224, 224), 1),
    ],
)
def test_jpeg_draft_factor_never_fails_and_never_shrinks_below_the_target(width, height, size, factor):
    from training.data.decode import jpeg_draft_factor

    got = jpeg_draft_factor(width, height, size)
    assert got == factor
    # the reduced image still covers the target, or is the full image when that is smaller
    assert got == 1 or (width // got >= size[0] and height // got >= size[1])


@pytest.mark.parametrize("image_size", [96, 160])
def test_model_input_larger_than_the_stored_images_reads_every_row(mixed_variant, image_size):
    """JPEG, stored-PNG and compressed-PNG rows all decode at full size and come out at the model input
    size (the transform upscales); a whole DataLoader epoch yields every row."""
    from torch.utils.data import DataLoader

    from training.data.batches import collate, training_targets
    from training.data.datasets import HAMArtefacts
    from training.data.transforms import eval_transform, train_transform

    for transforms in (
        train_transform(image_size, float_output=False),
        eval_transform(image_size, float_output=False),
    ):
        dataset = HAMArtefacts(
            mixed_variant.parent,
            CLEAN_TRAIN,
            target_types=training_targets(),
            transforms=transforms,
            decode_size=image_size,
        )
        assert {bytes(dataset.reader.image_buffer(i)[:4]) for i in range(len(dataset))} == {
            b"\xff\xd8\xff\xe0",
            b"\x89PNG",
        }
        for i in range(len(dataset)):
            assert tuple(dataset[i][0].shape) == (3, image_size, image_size)
        seen = [
            int(i) for batch in DataLoader(dataset, batch_size=4, collate_fn=collate) for i in batch["index"]
        ]
        assert seen == list(range(len(dataset)))


def test_stop_iteration_inside_a_dataset_is_an_error_not_an_empty_epoch(mixed_variant):
    from torch.utils.data import DataLoader

    from training.data.batches import collate, training_targets
    from training.data.datasets import HAMArtefacts

    def broken(*inputs):
        raise StopIteration

    for transforms in ({"transforms": broken}, {"transform": broken}, {"target_transform": broken}):
        dataset = HAMArtefacts(
            mixed_variant.parent, CLEAN_TRAIN, target_types=training_targets(), **transforms
        )
        with pytest.raises(RuntimeError, match="train_none.h5: reading row 0 raised StopIteration"):
            list(DataLoader(dataset, batch_size=2, collate_fn=collate))
        with pytest.raises(RuntimeError, match="StopIteration"):
            list(dataset)


def test_expected_images_per_epoch():
    from training.run.engine import check_epoch, expected_images

    assert expected_images(24, 8, drop_last=True) == 24
    assert expected_images(27, 8, drop_last=True) == 24
    assert expected_images(27, 8, drop_last=False) == 27
    check_epoch("run", 0, 24, 24)
    with pytest.raises(RunFailed, match=r"run: epoch 1 trained on 8 of 24 images"):
        check_epoch("run", 0, 8, 24)


def _config(data_dir, **changes):
    from training.run.engine import TrainConfig

    values = {
        "arch": "small_cnn",
        "data": str(data_dir),
        "image_size": 96,
        "epochs": 2,
        "batch_size": 8,
        "optimizer": "sgd",
        "lr": 0.05,
        "max_train_images": 24,
        "max_val_images": 8,
        "workers": 0,
        "seed": 1,
    }
    return TrainConfig(**{**values, **changes})


def test_training_above_the_stored_size_sees_every_image_and_predicts_every_test_image(
    data_dir, tmp_path, monkeypatch
):
    from training.models import MODELS
    from training.run.engine import train
    from training.run.predict import check_predictions, read_predictions

    monkeypatch.setitem(MODELS, "small_cnn", _small_cnn)
    run = tmp_path / "run"
    summary = train(_config(data_dir), run, progress=False)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert len(log) == 2 and all(np.isfinite(r["train_loss"]) and r["train_images_per_s"] > 0 for r in log)
    assert np.isfinite(summary["best_val_macro_pr_auc"]) and summary["predictions"] == 13
    check_predictions(run / "predictions", data_dir)
    assert len(read_predictions(run / "predictions" / f"{ALL_TEST}.csv")) == 7
    assert (run / "DONE").is_file()

    # a DONE run whose predictions are incomplete is caught by the same check
    table = run / "predictions" / f"{ALL_TEST}.csv"
    table.write_text("".join(table.read_text().splitlines(keepends=True)[:-1]))
    with pytest.raises(RunFailed, match=f"{ALL_TEST}.csv: 6 rows for the 7 images"):
        check_predictions(run / "predictions", data_dir)
    table.unlink()
    with pytest.raises(RunFailed, match=f"{ALL_TEST}.csv: prediction table missing"):
        check_predictions(run / "predictions", data_dir)


def test_an_epoch_that_loses_batches_fails_the_run_without_done(data_dir, tmp_path, monkeypatch):
    """A loader that ends early (here: after one batch) is an error naming the run; nothing is marked DONE."""
    import itertools

    import training.run.engine as engine
    import training.run.loaders as loaders
    from training.models import MODELS

    monkeypatch.setitem(MODELS, "small_cnn", _small_cnn)
    real_loader = loaders.make_loader

    class OneBatch:
        def __init__(self, loader):
            self.loader = loader

        def __iter__(self):
            return itertools.islice(iter(self.loader), 1)

        def __len__(self):
            return len(self.loader)

    monkeypatch.setattr(loaders, "make_loader", lambda *a, **k: OneBatch(real_loader(*a, **k)))
    run = tmp_path / "run"
    with pytest.raises(RunFailed, match=rf"{run}: epoch 1 trained on 8 of 24 images"):
        engine.train(_config(data_dir, image_size=32), run, progress=False)
    assert not (run / "DONE").exists()


def test_train_cli_exits_non_zero_with_one_line_on_a_failed_run(data_dir, tmp_path):
    """Through the console script: a run that diverges (absurd learning rate) exits 1 with one line
    naming the run, whether the training loss or the validation scores go non-finite first."""
    runs = tmp_path / "runs"
    result = subprocess.run(
        [
            sys.executable,
            "-W",
            "ignore::UserWarning",
            "-m",
            "generator.cli",
            "train",
            "--data",
            str(data_dir),
            "--out",
            str(runs),
            "--arch",
            "resnet34",
            "--profile",
            "tiny",
            "--epochs",
            "1",
            "--image-size",
            "32",
            "--lr",
            "1e30",
            "--max-train-images",
            "16",
            "--batch-size",
            "4",
            "--quiet",
            "--no-predict",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert str(runs / "resnet34" / CLEAN_TRAIN / "fold0") in lines[0] and "non-finite" in lines[0]
    assert not (runs / "resnet34" / CLEAN_TRAIN / "fold0" / "DONE").exists()


def test_sweep_run_exits_non_zero_when_a_job_fails(data_dir, tmp_path, capsys, monkeypatch):
    """`sweep run --all` stops at a failed run with one line naming it and exit 1 (not 0)."""
    import training.run.sweep as sweep
    from generator.cli import main

    runs = tmp_path / "runs"
    assert (
        main(
            [
                "sweep",
                "plan",
                "--data",
                str(data_dir),
                "--out",
                str(runs),
                "--profile",
                "tiny",
                "--archs",
                "resnet34",
                "--train-variants",
                CLEAN_TRAIN,
            ]
        )
        == 0
    )

    def failing(job, progress=True):
        raise RunFailed(
            f"{job['run_dir']}: epoch 1 trained on 0 of 128 images (the data loader stopped early)"
        )

    monkeypatch.setattr(sweep, "run_job", failing)
    capsys.readouterr()
    assert main(["sweep", "run", "--out", str(runs), "--all", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("ham-artefacts sweep: error:") and "trained on 0 of 128" in err
