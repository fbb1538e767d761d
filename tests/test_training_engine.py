"""Training loop: every architecture learns a tiny batch, resume is exact, a run writes the contract files."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("sklearn")

from helpers.training import small_cnn as _small_cnn  # noqa: E402
from helpers.training import write_synthetic_data  # noqa: E402

from generator.variants import ALL_TEST, CLEAN_TRAIN  # noqa: E402
from training.models import list_architectures  # noqa: E402

TINY_DETECTOR = {
    "rpn_pre_nms_top_n_train": 100,
    "rpn_post_nms_top_n_train": 30,
    "rpn_pre_nms_top_n_test": 50,
    "rpn_post_nms_top_n_test": 10,
    "rpn_batch_size_per_image": 32,
    "box_batch_size_per_image": 16,
    "box_detections_per_img": 10,
    # the tiny profile's smaller RoI heads (training.models.HEAD_OPTIONS)
    "box_representation_size": 256,
    "mask_roi_size": 7,
    "mask_head_layers": 2,
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    torch.set_num_threads(2)
    return write_synthetic_data(
        tmp_path_factory.mktemp("engine_data"), n_train=42, n_test=7, train_variants=(CLEAN_TRAIN,)
    )


@pytest.mark.parametrize("arch", list_architectures())
def test_each_architecture_overfits_a_tiny_batch(arch, data_dir):
    from training.data.batches import collate, training_targets
    from training.data.datasets import HAMArtefacts
    from training.data.transforms import eval_transform
    from training.models import build_model
    from training.run.engine import training_loss

    torch.manual_seed(0)
    dataset = HAMArtefacts(
        data_dir, CLEAN_TRAIN, target_types=training_targets(with_masks=True), transforms=eval_transform(32)
    )
    batch = collate([dataset[i] for i in (0, 2, 4, 6)])
    assert len(set(batch["label"].tolist())) == 4
    model = build_model(arch, image_size=32, detector_options=TINY_DETECTOR).train()
    params = [p for p in model.parameters() if p.requires_grad]
    # the settings the tiny profile trains with (SGD + gradient clipping for the detectors)
    optimizer = (
        torch.optim.AdamW(params, lr=1e-3)
        if arch == "resnet34"
        else torch.optim.SGD(params, lr=0.02, momentum=0.9)
    )
    cpu = torch.device("cpu")
    losses = []
    for _ in range(20):
        loss = training_loss(model, arch, batch, cpu, amp=False)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        optimizer.step()
        losses.append(loss.item())
        if losses[-1] < losses[0] / 2:
            break
    assert losses[-1] < losses[0] / 2, (
        f"{arch}: loss {losses[0]:.3f} -> {losses[-1]:.3f} in {len(losses)} steps"
    )


def _config(data_dir, **changes):
    from training.run.engine import TrainConfig

    values = {
        "arch": "small_cnn",
        "data": str(data_dir),
        "image_size": 32,
        "epochs": 3,
        "batch_size": 8,
        "optimizer": "sgd",
        "lr": 0.05,
        "max_train_images": 24,
        "workers": 0,
        "predict": False,
        "seed": 5,
    }
    return TrainConfig(**{**values, **changes})


def test_resume_after_interruption_gives_the_same_final_weights(data_dir, tmp_path, monkeypatch):
    from training.models import MODELS
    from training.run.engine import train

    monkeypatch.setitem(MODELS, "small_cnn", _small_cnn)

    straight = train(_config(data_dir), tmp_path / "straight", progress=False)
    interrupted = train(_config(data_dir), tmp_path / "resumed", progress=False, stop_after_epochs=1)
    assert interrupted["epoch"] == 1
    assert interrupted["interrupted"] and not (tmp_path / "resumed" / "DONE").exists()
    # a kill after the log line but before the checkpoint leaves a stray line: resume drops it
    with open(tmp_path / "resumed" / "log.jsonl", "a") as log:
        log.write(json.dumps({"epoch": 2, "stray": True}) + "\n")
    # resume twice (1 -> 2, then 2 -> 3)
    train(_config(data_dir), tmp_path / "resumed", progress=False, stop_after_epochs=1)
    resumed = train(_config(data_dir), tmp_path / "resumed", progress=False)
    assert resumed["epochs_run"] == straight["epochs_run"] == 3

    for name in ("last.pt", "best.pt"):
        a = torch.load(tmp_path / "straight" / name, weights_only=True)
        b = torch.load(tmp_path / "resumed" / name, weights_only=True)
        a, b = (a["model"], b["model"]) if name == "last.pt" else (a, b)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}: {key} differs after resume"
    log = [json.loads(line) for line in (tmp_path / "resumed" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3] and not any(r.get("stray") for r in log)

    # a resume with a different configuration is refused rather than mixed into the run
    from generator.errors import UserError

    assert not (tmp_path / "resumed" / "DONE").exists()  # DONE needs the 13 prediction tables (predict=False)
    with pytest.raises(UserError, match="another configuration"):
        train(_config(data_dir, lr=0.1), tmp_path / "resumed", progress=False)


def test_a_finished_run_is_reused_only_under_its_own_configuration(data_dir, tmp_path, monkeypatch):
    """A finished run (DONE) is returned as it is by train and skipped by sweep run, whatever the machine
    settings; under another experiment configuration both refuse it instead of mixing it into new results
    (a resumed showcase whose profile changed)."""
    from generator.errors import UserError
    from training.models import MODELS
    from training.run.engine import train
    from training.run.sweep import run_all

    monkeypatch.setitem(MODELS, "small_cnn", _small_cnn)
    run = tmp_path / "run"
    train(_config(data_dir, epochs=1), run, progress=False)
    summary = {"epochs_run": 1, "best_val_macro_pr_auc": 0.5, "train_seconds": 1.0, "predict_seconds": 0.5}
    (run / "DONE").write_text(
        json.dumps(summary)
    )  # predict=False never writes it: stand in for the 13 tables
    log = (run / "log.jsonl").read_text()

    assert train(_config(data_dir, epochs=1), run, progress=False) == summary
    assert (
        train(_config(data_dir, epochs=1, threads=1, device="cpu", workers=1), run, progress=False) == summary
    )
    assert (run / "log.jsonl").read_text() == log  # nothing trained again

    for change, field_name in (
        ({"lr": 0.1}, "lr"),
        ({"epochs": 2}, "epochs"),
        ({"augment": "dihedral"}, "augment"),
    ):
        with pytest.raises(
            UserError, match=rf"{run}: holds a finished run with another configuration \({field_name};"
        ):
            train(_config(data_dir, **{"epochs": 1, **change}), run, progress=False)
        job = {
            "arch": "small_cnn",
            "train_variant": CLEAN_TRAIN,
            "fold": 0,
            "run_dir": str(run),
            "config": {**json.loads(json.dumps(vars(_config(data_dir, epochs=1)))), **change},
        }
        jobs_file = tmp_path / "jobs.jsonl"
        jobs_file.write_text(json.dumps(job) + "\n")
        with pytest.raises(UserError, match="finished run with another configuration"):
            run_all(jobs_file, progress=False)
    job["config"] = json.loads(json.dumps(vars(_config(data_dir, epochs=1))))
    jobs_file.write_text(json.dumps(job) + "\n")
    assert run_all(jobs_file, progress=False) == [(job, summary | {"skipped": True})]

    (run / "DONE").write_text("[]")
    with pytest.raises(UserError, match="DONE: not a run summary"):
        train(_config(data_dir, epochs=1), run, progress=False)
    (run / "DONE").write_text(json.dumps(summary))
    (run / "config.json").unlink()
    (run / "config.json").mkdir()  # a folder where the record belongs: nothing says what ran
    with pytest.raises(UserError, match="config.json: not a file beside DONE"):
        train(_config(data_dir, epochs=1), run, progress=False)


def test_a_run_writes_the_contract_files_and_learns(data_dir, tmp_path):
    """The CLI `train` on the synthetic data: config, folds, log, checkpoints, 13 prediction tables, DONE;
    the colour-coded lesions are learnable, so the validation PR-AUC beats the class prior."""
    from generator.cli import main
    from training.models import load_trained

    runs = tmp_path / "runs"
    assert (
        main(
            [
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
                "3",
                "--image-size",
                "32",
                "--quiet",
            ]
        )
        == 0
    )
    run = runs / "resnet34" / CLEAN_TRAIN / "fold0"
    for name in ("config.json", "folds.csv", "log.jsonl", "best.pt", "last.pt", "DONE"):
        assert (run / name).is_file(), name
    assert len(list((run / "predictions").glob("test_*.csv"))) == 13
    config = json.loads((run / "config.json").read_text())
    assert config["arch"] == "resnet34" and config["image_size"] == 32 and config["pretrained"] is False
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert len(log) == 3
    assert max(r["val_macro_pr_auc"] for r in log) > log[0]["val_prior_pr_auc"]
    assert torch.load(run / "best.pt", weights_only=True).keys() == load_trained(run)[0].state_dict().keys()
    done = json.loads((run / "DONE").read_text())
    assert done["predictions"] == 13 and done["epochs_run"] == 3
    # `predict` rewrites the same tables from best.pt
    before = (run / "predictions" / f"{ALL_TEST}.csv").read_text()
    assert main(["predict", "--run", str(run), "--quiet"]) == 0
    assert (run / "predictions" / f"{ALL_TEST}.csv").read_text() == before
    assert np.isfinite(done["best_val_macro_pr_auc"])
    from training.run.sweep import chance_check

    check = chance_check(run)  # on test_none: above the class-prior baseline
    assert check["macro_pr_auc"] > check["prior_pr_auc"], check
