"""The showcase: provenance, and whether committed results still match the data build and the plan.

The committed-results tests run against ``results/showcase`` when it exists; until `make showcase`
has been run and committed they are skipped, with that reason in the report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from generator.variants import ALL_TEST, CLEAN_TEST  # noqa: E402
from generator.variants.manifest import MANIFEST_NAME  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "results" / "showcase"
SMALL = {
    "scale": 0.01,
    "test_scale": 0.01,
    "size": "48x36",
    "difficulty": "ham",
    "seed": 0,
    "profile": "showcase",
    "gradcam_n": 2,
}


@pytest.fixture
def small_showcase(tmp_path, monkeypatch):
    """A showcase folder as `make showcase` leaves it, for a tiny build and a planned (untrained) grid."""
    from training.run import showcase
    from training.run.sweep import load_jobs, plan

    monkeypatch.setattr(showcase, "SETTINGS", dict(SMALL))
    work, out = tmp_path / "work", tmp_path / "out"
    data = showcase.build_data(work, progress=False, variants=[CLEAN_TEST, ALL_TEST])
    runs = (work / "runs").resolve()
    jobs = load_jobs(plan(data, runs, "showcase", seed=0))
    for job in jobs[:2]:  # two runs with a log and a prediction table, the rest untrained
        run_dir = Path(job["run_dir"])
        (run_dir / "predictions").mkdir(parents=True)
        (run_dir / "log.jsonl").write_text('{"epoch": 1}\n')
        (run_dir / "best.pt").write_bytes(b"checkpoint")
        (run_dir / "predictions" / f"{CLEAN_TEST}.csv").write_text("image_id\n")
    showcase.collect(runs, data, out, jobs)
    showcase.write_provenance(out, data, jobs, "cpu", {"total_s": 1.0})
    return showcase, out, tmp_path


def test_collect_keeps_results_and_provenance_but_no_checkpoints_or_variant_files(small_showcase):
    showcase, out, _ = small_showcase
    assert not list(out.rglob("*.pt")) and not list(out.rglob("*.h5"))
    assert len(list(out.glob("runs/*/*/fold*/log.jsonl"))) == 2
    assert (out / "data" / MANIFEST_NAME).is_file()
    jobs = json.loads((out / "jobs.json").read_text())
    assert all(not Path(j["run_dir"]).is_absolute() and "data" not in j["config"] for j in jobs)
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["settings"] == SMALL and provenance["n_runs"] == len(jobs)
    assert set(provenance["content_digests"]) == {f"{CLEAN_TEST}.h5", f"{ALL_TEST}.h5"}
    assert {"torch", "torchvision", "python"} <= set(provenance["versions"])


def test_check_passes_on_a_faithful_copy_and_names_what_changed(small_showcase, monkeypatch):
    showcase, out, tmp_path = small_showcase
    assert showcase.check_committed(out, tmp_path / "check1") == []

    monkeypatch.setitem(showcase.SETTINGS, "difficulty", "easy")  # other data
    problems = showcase.check_committed(out, tmp_path / "check2")
    assert any("settings differ" in p for p in problems)
    assert any(f"{CLEAN_TEST}.h5: the current data build differs" in p for p in problems)

    monkeypatch.setitem(showcase.SETTINGS, "difficulty", "ham")
    from training.run.sweep import PROFILES

    monkeypatch.setitem(PROFILES["showcase"]["resnet34"], "epochs", 99)  # another plan
    assert showcase.check_committed(out, tmp_path / "check3") == [
        "the sweep plan differs from the committed jobs.json"
    ]


def test_run_seconds_count_every_run_once_whoever_trained_it():
    from training.run.showcase import run_seconds

    fresh = {"train_seconds": 400.25, "predict_seconds": 3.5}
    reused = {"train_seconds": 350.0, "predict_seconds": 2.0, "skipped": True}
    assert run_seconds([fresh, reused, reused]) == {"runs_s": 1107.8, "reused_runs": 2}
    assert run_seconds([fresh]) == {"runs_s": 403.8, "reused_runs": 0}
    assert run_seconds([]) == {"runs_s": 0.0, "reused_runs": 0}


@pytest.mark.skipif(
    not (COMMITTED / "provenance.json").is_file(), reason="results/showcase is not committed yet"
)
def test_committed_provenance_sums_the_collected_runs_own_records():
    from training.run.showcase import run_seconds

    provenance = json.loads((COMMITTED / "provenance.json").read_text())
    done = [json.loads(p.read_text()) for p in sorted(COMMITTED.glob("runs/*/*/fold*/DONE"))]
    assert len(done) == provenance["n_runs"]
    assert provenance["timings"]["runs_s"] == pytest.approx(run_seconds(done)["runs_s"], abs=0.1)


def test_provenance_commit_comes_from_the_environment_outside_a_git_checkout(monkeypatch):
    """A source tree copied without .git (a GPU machine) records the commit it was copied from."""
    from training.run import showcase

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(showcase.subprocess, "run", no_git)
    monkeypatch.setenv("HAM_ARTEFACTS_COMMIT", "abc123")
    assert showcase._commit() == "abc123"
    monkeypatch.delenv("HAM_ARTEFACTS_COMMIT")
    assert showcase._commit() is None


def test_showcase_cli_rejects_a_bad_device(tmp_path, capsys):
    from generator.cli import main

    assert (
        main(["showcase", "--work", str(tmp_path / "w"), "--out", str(tmp_path / "o"), "--device", "tpu"])
        == 2
    )
    assert "--device" in capsys.readouterr().err
    assert not (tmp_path / "w").exists() and not (tmp_path / "o").exists()
    (tmp_path / "file").write_text("")
    for flag in ("--work", "--out"):
        other = "--out" if flag == "--work" else "--work"
        assert main(["showcase", flag, str(tmp_path / "file"), other, str(tmp_path / "x")]) == 2
        assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "x").exists()


committed = pytest.mark.skipif(
    not (COMMITTED / "provenance.json").is_file(),
    reason="results/showcase is not committed yet: run `make showcase` and commit it",
)


@committed
def test_committed_showcase_matches_the_current_data_build_and_plan(tmp_path):
    from training.run.showcase import check_committed

    assert check_committed(COMMITTED, tmp_path) == [], "rerun `make showcase` and commit results/showcase"


@committed
def test_committed_control_verdicts_recompute_from_the_prediction_tables():
    import pandas as pd

    from training.evaluation.effects import acceptance

    recomputed = acceptance(COMMITTED / "runs")
    committed = pd.read_csv(COMMITTED / "results" / "controls.csv")
    key = ["arch", "control"]
    merged = recomputed.merge(committed, on=key, suffixes=("", "_committed"))
    assert len(merged) == len(committed) == len(recomputed)
    assert (merged["status"] == merged["status_committed"]).all()


def test_gpu_session_plans_the_jobs_that_showcase_device_cuda_resumes(tmp_path, monkeypatch):
    """benchmarks/gpu_session.sh trains the jobs its plan script writes, several at a time, then runs
    `showcase --device cuda`, which re-plans: the two plans must be the same job lines, or the
    showcase would refuse the finished runs as another configuration."""
    import runpy
    import sys

    from training.run import showcase
    from training.run.sweep import load_jobs, plan

    monkeypatch.setattr(showcase, "SETTINGS", dict(SMALL))
    monkeypatch.setattr(sys, "argv", ["gpu_session_plan.py", str(tmp_path / "work")])
    runpy.run_path(str(REPO / "benchmarks" / "gpu_session_plan.py"), run_name="__main__")
    work = (tmp_path / "work").resolve()
    session = load_jobs(work / "runs" / "jobs.jsonl")
    assert {job["config"]["device"] for job in session} == {"cuda"}
    replanned = load_jobs(
        plan(work / "data", tmp_path / "again", "showcase", seed=0, overrides={"device": "cuda"})
    )
    strip = [{k: v for k, v in job.items() if k != "run_dir"} for job in replanned]
    assert strip == [{k: v for k, v in job.items() if k != "run_dir"} for job in session]
