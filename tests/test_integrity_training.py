"""Integrity of what training, prediction and Grad-CAM read and write (issue 24, items 1, 3, 6 and 7).

Each case the issue found by hand: files of another build or with flipped bytes, two writers in one
run folder, damaged checkpoints, config.json and log.jsonl, a full disk while a checkpoint or the log
is written. Each now stops with one line naming the file and what to do (exit 2), or is handled as the
README's reliability section says.
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("sklearn")

from helpers.training import small_cnn, write_data_manifest, write_synthetic_data  # noqa: E402

from generator.cli import describe_error  # noqa: E402
from generator.errors import UserError  # noqa: E402
from generator.variants import ALL_TEST, CLEAN_TEST, CLEAN_TRAIN, list_variants  # noqa: E402
from generator.variants.manifest import MANIFEST_NAME, sha256_file  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TRAIN_VARIANT = "train_nv"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """A data folder, and another build of other size and seed (its files are not the first's)."""
    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("integrity")
    variants = (CLEAN_TRAIN, TRAIN_VARIANT)
    return (
        write_synthetic_data(root / "a", n_train=42, n_test=7, train_variants=variants),
        write_synthetic_data(root / "b", n_train=40, n_test=6, train_variants=variants, seed=1),
    )


@pytest.fixture
def data(built, tmp_path) -> Path:
    return Path(shutil.copytree(built[0], tmp_path / "data"))


@pytest.fixture
def other(built) -> Path:
    return built[1]


@pytest.fixture(autouse=True)
def _small_cnn(monkeypatch):
    from training.models import MODELS

    monkeypatch.setitem(MODELS, "small_cnn", small_cnn)


def _config(data_dir, **changes):
    from training.run.config import TrainConfig

    values = {
        "arch": "small_cnn",
        "data": str(data_dir),
        "train_variant": TRAIN_VARIANT,
        "image_size": 32,
        "epochs": 2,
        "batch_size": 8,
        "lr": 0.05,
        "max_train_images": 16,
        "max_val_images": 8,
        "workers": 0,
        "seed": 1,
        "predict": False,
    }
    return TrainConfig(**{**values, **changes})


def _train(data_dir, run_dir, **changes) -> dict:
    from training.run.engine import train

    stop = changes.pop("stop_after_epochs", None)
    return train(_config(data_dir, **changes), run_dir, progress=False, stop_after_epochs=stop)


def _one_line(exc: pytest.ExceptionInfo, code: int = 2) -> str:
    """The CLI's message of the error: one line, exit ``code``."""
    message, got = describe_error(exc.value)
    assert got == code and "\n" not in message and "Traceback" not in message, message
    return message


def _flip_bytes(path: Path) -> None:
    """20 bytes flipped in the middle of the file, same size (h5py may still read it)."""
    raw = bytearray(path.read_bytes())
    for i in range(20):
        raw[len(raw) // 2 + i * 7] ^= 0xFF
    path.write_bytes(bytes(raw))


# --- 1. consumers check what they read ----------------------------------------------------------


def test_a_training_file_of_another_build_stops_train_before_any_output(data, other, tmp_path):
    shutil.copyfile(other / f"{TRAIN_VARIANT}.h5", data / f"{TRAIN_VARIANT}.h5")
    with pytest.raises(UserError) as exc:  # the manifest still lists the file it replaced
        _train(data, tmp_path / "run")
    assert _one_line(exc).startswith(f"{data / TRAIN_VARIANT}.h5: ")
    assert "manifest.json says" in str(exc.value)

    # a manifest rewritten over the mixed folder vouches for each file, but not for the mix: the folds
    # come from train_none, whose images the other build's file does not hold
    write_data_manifest(data)
    with pytest.raises(UserError, match=rf"{TRAIN_VARIANT}\.h5: 40 images, {CLEAN_TRAIN}\.h5 has 42"):
        _train(data, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_test_file_of_another_build_stops_train_before_training_and_predict(data, other, tmp_path):
    from training.run.predict import predict_run

    _train(data, tmp_path / "run", epochs=1)  # trained on the intact folder, without predictions
    shutil.copyfile(other / f"{ALL_TEST}.h5", data / f"{ALL_TEST}.h5")
    write_data_manifest(data)
    expected = rf"{ALL_TEST}\.h5: 6 images, {CLEAN_TEST}\.h5 has 7"
    with pytest.raises(UserError, match=expected):
        _train(data, tmp_path / "run2", predict=True)
    assert not (tmp_path / "run2").exists()  # refused before the first epoch, not after the last
    with pytest.raises(UserError, match=expected):
        predict_run(tmp_path / "run", data, device="cpu", progress=False)
    assert not (tmp_path / "run" / "predictions").exists()


def test_flipped_bytes_stop_predict_and_the_dataset_naming_the_file(data, tmp_path, capsys):
    from generator.cli import main
    from training.data.datasets import HAMArtefacts

    _train(data, tmp_path / "run", epochs=1)
    HAMArtefacts(data, ALL_TEST)  # trusted once...
    _flip_bytes(data / f"{ALL_TEST}.h5")  # ... rewritten: a new mtime, so hashed again
    with pytest.raises(UserError) as exc:
        HAMArtefacts(data, ALL_TEST)
    assert _one_line(exc).startswith(f"{data / ALL_TEST}.h5: SHA-256 ")
    assert "differs from manifest.json" in str(exc.value)
    capsys.readouterr()
    argv = ["predict", "--run", str(tmp_path / "run"), "--data", str(data), "--device", "cpu", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{ALL_TEST}.h5: SHA-256" in err


def test_config_json_records_what_the_run_read_and_a_resumed_run_refuses_other_data(data, tmp_path):
    run = tmp_path / "run"
    _train(data, run, predict=True, stop_after_epochs=1)
    record = json.loads((run / "config.json").read_text())["data_record"]
    read = [CLEAN_TRAIN, TRAIN_VARIANT, *list_variants("test")]
    assert record == {
        "manifest_sha256": sha256_file(data / MANIFEST_NAME),
        "files": {name: sha256_file(data / f"{name}.h5") for name in sorted(read)},
    }
    # the folder rebuilt with another seed: each file matches the new manifest, none what the run read
    write_synthetic_data(data, n_train=42, n_test=7, train_variants=(CLEAN_TRAIN, TRAIN_VARIANT), seed=2)
    with pytest.raises(UserError) as exc:
        _train(data, run, predict=True)
    message = _one_line(exc)
    assert message.startswith(f"{run}: started on other data ({', '.join(sorted(read))} differ from ")
    assert not (run / "DONE").exists()


def test_a_finished_run_recorded_before_data_records_is_still_the_same_run(data, tmp_path, monkeypatch):
    """The committed showcase's config.json files hold no data record: they must still be reused."""
    import training.run.engine as engine

    run = tmp_path / "run"
    summary = _train(data, run, predict=True, epochs=1)
    config = json.loads((run / "config.json").read_text())
    del config["data_record"]
    (run / "config.json").write_text(json.dumps(config))
    monkeypatch.setattr(engine, "setup", lambda *a, **k: pytest.fail("a finished run was trained again"))
    assert _train(data, run, predict=True, epochs=1) == summary


# --- 3. one writer per run folder ---------------------------------------------------------------

HOLDER = """
import sys, time
from pathlib import Path
from training.run.checkpoint import run_folder_lock
with run_folder_lock(sys.argv[1], wait=0):
    print("held", flush=True)
    if len(sys.argv) > 2:  # finish the run, then let go
        time.sleep(0.5)
        Path(sys.argv[1], "DONE").write_text(sys.argv[2])
    else:
        sys.stdin.read()
"""


@pytest.fixture
def holder():
    """``holder(run_dir[, done])``: another process holding the run folder's lock (until the test ends,
    or, given a DONE summary, until it has written it)."""
    started = []

    def start(run_dir: Path, done: str | None = None) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(run_dir), *([done] if done else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        started.append(process)
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        return process

    yield start
    for process in started:
        process.communicate(timeout=60)


def test_a_second_train_or_sweep_run_waits_then_stops_naming_the_holder(data, tmp_path, holder, capsys):
    from generator.cli import main

    runs = tmp_path / "runs"
    run_dir = runs / "resnet34" / CLEAN_TRAIN / "fold0"
    process = holder(run_dir)
    flags = ["--wait", "0.3", "--quiet"]
    capsys.readouterr()
    assert main(["train", "--data", str(data), "--out", str(runs), "--arch", "resnet34", *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{run_dir}: in use by process {process.pid}" in err
    assert not (run_dir / "config.json").exists()

    plan = ["sweep", "plan", "--data", str(data), "--out", str(runs), "--profile", "tiny"]
    assert main([*plan, "--archs", "resnet34", "--train-variants", CLEAN_TRAIN]) == 0
    jobs = [json.loads(line) for line in (runs / "jobs.jsonl").read_text().splitlines()]
    index = next(job["index"] for job in jobs if Path(job["run_dir"]) == run_dir.resolve())
    capsys.readouterr()
    assert main(["sweep", "run", "--out", str(runs), "--index", str(index), *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"in use by process {process.pid}" in err


def test_sweep_run_all_skips_the_jobs_another_process_holds(data, tmp_path, holder, capsys, monkeypatch):
    import training.run.sweep as sweep
    from generator.cli import main

    runs = tmp_path / "runs"
    plan = ["sweep", "plan", "--data", str(data), "--out", str(runs), "--profile", "tiny"]
    assert main([*plan, "--archs", "resnet34", "--train-variants", CLEAN_TRAIN, TRAIN_VARIANT]) == 0
    jobs = sweep.load_jobs(runs / "jobs.jsonl")
    assert len(jobs) >= 2
    process = holder(Path(jobs[0]["run_dir"]))
    trained = []
    monkeypatch.setattr(sweep, "run_job", lambda job, progress=True: trained.append(job["run_dir"]) or {})
    capsys.readouterr()
    assert main(["sweep", "run", "--out", str(runs), "--all", "--quiet"]) == 0
    assert trained == [job["run_dir"] for job in jobs[1:]]  # every other job, once
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert f"in use by process {process.pid}" in lines[0]["busy"]
    assert all("busy" not in line for line in lines[1:])


def test_a_run_finished_by_the_process_waited_for_is_not_trained_again(data, tmp_path, holder, monkeypatch):
    import training.run.engine as engine

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(asdict(_config(data))))
    holder(run, done=json.dumps({"epochs_run": 2}))
    monkeypatch.setattr(
        engine, "setup", lambda *a, **k: pytest.fail("trained a run another process finished")
    )
    assert engine.train(_config(data), run, progress=False, wait=30) == {"epochs_run": 2}


# --- 6, 7. checkpoints, config.json and log.jsonl -----------------------------------------------


@pytest.mark.parametrize("damage", ["garbage", "truncated", "another_object"])
def test_a_damaged_last_pt_stops_the_resume_naming_it_and_what_to_do(data, tmp_path, damage):
    run = tmp_path / "run"
    _train(data, run, stop_after_epochs=1)
    last = run / "last.pt"
    if damage == "garbage":
        last.write_bytes(b"not a checkpoint at all")
    elif damage == "truncated":
        last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    else:
        torch.save({"epoch": 1}, last)
    with pytest.raises(UserError) as exc:
        _train(data, run)
    message = _one_line(exc)
    assert message.startswith(f"{last}: ") and "delete it to train the run from its first epoch" in message
    assert "weights_only" not in message
    last.unlink()  # what the message says to do
    assert _train(data, run)["epochs_run"] == 2
    assert [json.loads(line)["epoch"] for line in (run / "log.jsonl").read_text().splitlines()] == [1, 2]


def test_a_damaged_best_pt_stops_predict_and_gradcam_naming_it(data, tmp_path):
    from training.evaluation.gradcam import run_gradcam
    from training.run.config import run_dir_for
    from training.run.predict import predict_run

    runs = tmp_path / "runs"
    run = run_dir_for(runs, "small_cnn", TRAIN_VARIANT, 0)
    _train(data, run, epochs=1)
    (run / "best.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(UserError) as exc:
        predict_run(run, data, device="cpu", progress=False)
    assert _one_line(exc).startswith(f"{run / 'best.pt'}: damaged or not a checkpoint")
    with pytest.raises(UserError) as exc:
        run_gradcam(runs, data, tmp_path / "results", n_images=2, progress=False)
    assert _one_line(exc).startswith(f"{run / 'best.pt'}: damaged or not a checkpoint")


def test_a_full_disk_while_last_pt_is_written_is_one_line_and_keeps_the_previous_one(
    data, tmp_path, monkeypatch
):
    from training.models import checkpoints

    real_save = torch.save
    saves = []

    def filling(obj, f, *args, **kwargs):
        if Path(f).name.startswith(".last.pt."):  # its temporary file (written, then renamed)
            saves.append(f)
            if len(saves) == 2:
                Path(f).write_bytes(b"PK\x03\x04 half a checkpoint")
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", filling)
    run = tmp_path / "run"
    with pytest.raises(UserError) as exc:
        _train(data, run, epochs=3, checkpoint_every=1)
    assert _one_line(exc) == (
        f"{run / 'last.pt'}: no space left on device (checkpoint not written; the previous one is intact)"
    )
    monkeypatch.setattr(torch, "save", real_save)  # room again
    assert checkpoints.load_checkpoint(run / "last.pt")["epoch"] == 1
    assert not [p.name for p in run.iterdir() if "partial" in p.name]
    assert _train(data, run, epochs=3)["epochs_run"] == 3  # and the run resumes from it


def test_a_full_disk_while_the_log_is_written_names_the_log(data, tmp_path, monkeypatch):
    import builtins

    import training.run.checkpoint as checkpoint

    real_open = builtins.open

    def full_log(path, mode="r", *args, **kwargs):
        if Path(path).name == "log.jsonl" and "a" in mode:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "open", full_log, raising=False)
    run = tmp_path / "run"
    with pytest.raises(UserError) as exc:
        _train(data, run)
    assert _one_line(exc) == f"{run / 'log.jsonl'}: no space left on device (epoch 1 not logged)"


def test_a_broken_config_json_names_the_file(data, tmp_path):
    run = tmp_path / "run"
    _train(data, run, stop_after_epochs=1)
    (run / "config.json").write_text('{"arch": "small_cnn", "image_')
    with pytest.raises(UserError) as exc:  # resuming (last.pt)
        _train(data, run)
    assert _one_line(exc).startswith(f"{run / 'config.json'}: not valid JSON")
    (run / "DONE").write_text("{}")
    with pytest.raises(UserError) as exc:  # a finished run
        _train(data, run)
    assert _one_line(exc).startswith(f"{run / 'config.json'}: not valid JSON")
    (run / "config.json").write_text("[1, 2]")
    with pytest.raises(UserError) as exc:
        _train(data, run)
    assert _one_line(exc).startswith(f"{run / 'config.json'}: not a run configuration")


def test_a_log_line_cut_short_by_a_kill_is_dropped_and_a_damaged_one_named(data, tmp_path, caplog):
    run = tmp_path / "run"
    _train(data, run, epochs=3, stop_after_epochs=1)
    log = run / "log.jsonl"
    good = log.read_text()
    log.write_text(good + '{"epoch": 2, "train_lo')  # killed while writing epoch 2's line
    assert _train(data, run, epochs=3)["epochs_run"] == 3
    assert [json.loads(line)["epoch"] for line in log.read_text().splitlines()] == [1, 2, 3]
    assert any("log.jsonl: dropped the last line, cut short" in r.getMessage() for r in caplog.records)

    _train(data, tmp_path / "run2", epochs=3, stop_after_epochs=1)
    log = tmp_path / "run2" / "log.jsonl"
    log.write_text('{"epoch": 1, "tr\n' + log.read_text())  # not the last line: damage, not a kill
    with pytest.raises(UserError) as exc:
        _train(data, tmp_path / "run2", epochs=3)
    assert _one_line(exc).startswith(f"{log}: line 1: not valid JSON")
