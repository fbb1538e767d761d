"""``ham-artefacts showcase`` (``make showcase``): the published study on the calibrated synthetic twin.

Stages, each reused when already finished, so an interrupted showcase resumes where it stopped:

1. ``synth-ham10000`` with :data:`SETTINGS` -> ``<work>/source``;
2. ``generate`` the variants the study uses -> ``<work>/data``;
3. ``sweep run --profile showcase`` -> ``<work>/runs`` (one line per finished run, with an ETA);
4. ``evaluate`` and ``gradcam`` -> ``<out>/results``;
5. collect, without checkpoints: ``<out>/runs/<arch>/<variant>/fold<k>/`` (config, log, DONE, the 13
   prediction tables), ``<out>/data/`` (manifest, label CSVs, examples, dataset card; no variant
   files), ``<out>/jobs.json`` (the plan, paths relative) and ``<out>/provenance.json`` (settings,
   data manifest digest, commit, library versions, timings).

``make site`` builds the published site from ``<out>`` alone. :func:`check_committed` tells whether
the committed results still match the current data build and sweep plan (a test runs it).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TypedDict

from generator.atomic import write_json_atomic
from generator.variants import ALL_TEST, CLEAN_TEST
from generator.variants.manifest import MANIFEST_NAME, sha256_file
from training.run.config import DONE_NAME

logger = logging.getLogger(__name__)


class Settings(TypedDict):
    scale: float
    test_scale: float
    size: str
    difficulty: str
    seed: int
    profile: str
    gradcam_n: int


SETTINGS: Settings = {
    "scale": 0.15,  # ~1,500 training images: 5-fold CV trains on ~1,200
    "test_scale": 0.3,  # ~450 test images, ~150 of them not nv: enough for the controls' McNemar tests
    "size": "128x96",
    "difficulty": "ham",
    "seed": 0,
    "profile": "showcase",
    "gradcam_n": 8,
}
"""The showcase's data build and training profile: one place, read by the runner, the check and the README."""
COLLECTED = ("config.json", "log.jsonl", DONE_NAME)


def study_variants() -> list[str]:
    """The training variants of the showcase's grid, then every test variant: what it generates."""
    from generator.variants import list_variants
    from training.run.sweep import PROFILES

    grid = PROFILES[SETTINGS["profile"]]["grid"]
    return [*dict.fromkeys(variant for _, variant, *_ in grid), *list_variants("test")]


def _stage(message: str) -> None:
    logger.info("==> %s", message)


def build_data(work: Path, progress: bool = True, variants=None) -> Path:
    """Stages 1-2: the synthetic source and its variant files under ``work`` (reused when present)."""
    from generator.sizes import parse_size
    from generator.sources.synth import synthesize_ham10000
    from generator.variants.build import generate

    source, data = work / "source", work / "data"
    size = parse_size(SETTINGS["size"])
    if size is None:  # a constant above, never empty
        raise ValueError(f"showcase SETTINGS: bad size {SETTINGS['size']!r}")
    synthesize_ham10000(
        source,
        scale=SETTINGS["scale"],
        test_scale=SETTINGS["test_scale"],
        seed=SETTINGS["seed"],
        size=size,
        difficulty=SETTINGS["difficulty"],
        workers=os.cpu_count() or 1,
        progress=progress,
    )
    generate(
        source,
        data,
        seed=SETTINGS["seed"],
        workers=min(2, os.cpu_count() or 1),
        variants=list(variants or study_variants()),
        progress=progress,
    )
    return data


def plan_jobs(data: Path, runs: Path, device: str = "auto") -> Path:
    """The showcase's sweep plan into ``runs/jobs.jsonl`` (``device`` other than auto is written into
    every job); returns the jobs file. benchmarks/gpu_session_plan.py plans with it too, so the runs it
    trains in parallel are the ones ``showcase --device`` then finds done."""
    from training.run.sweep import plan

    overrides = {} if device == "auto" else {"device": device}
    return plan(data, runs, SETTINGS["profile"], seed=SETTINGS["seed"], overrides=overrides)


def run_showcase(
    work: str | os.PathLike, out: str | os.PathLike, device: str = "auto", progress: bool = True
) -> dict:
    """Every stage; returns the provenance written to ``<out>/provenance.json``."""
    from training.evaluation.evaluate import evaluate
    from training.evaluation.gradcam import run_gradcam
    from training.run.sweep import load_jobs, run_all

    work, out = Path(work).resolve(), Path(out).resolve()
    started = time.perf_counter()
    timings = {}
    _stage(f"[1-2/5] synthetic twin and variants -> {work}")
    data = build_data(work, progress)
    timings["data_s"] = round(time.perf_counter() - started, 1)

    _stage("[3/5] training (one line per finished run)")
    runs = work / "runs"
    jobs_file = runs / "jobs.jsonl"
    # planned anew each time (deterministic), so a resumed showcase follows the current profile; an
    # unfinished run planned differently before is refused by the engine as "another configuration"
    plan_jobs(data, runs, device)
    t0 = time.perf_counter()
    finished = run_all(jobs_file, progress=progress)
    timings["train_s"] = round(time.perf_counter() - t0, 1)
    timings.update(run_seconds([summary for _, summary in finished]))

    _stage(f"[4/5] evaluate and Grad-CAM -> {out / 'results'}")
    t0 = time.perf_counter()
    evaluate(runs, out / "results", progress=progress)
    import torch

    gradcam_device = device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    run_gradcam(
        runs, data, out / "results", n_images=SETTINGS["gradcam_n"], device=gradcam_device, progress=progress
    )
    timings["evaluate_s"] = round(time.perf_counter() - t0, 1)

    _stage(f"[5/5] collect results and provenance -> {out}")
    jobs = load_jobs(jobs_file)
    collect(runs, data, out, jobs)
    timings["total_s"] = round(time.perf_counter() - started, 1)
    provenance = write_provenance(out, data, jobs, device, timings)
    return provenance


def run_seconds(summaries: list[dict]) -> dict:
    """``runs_s``: the runs' own recorded train + predict seconds, summed; ``reused_runs``: how many were
    finished before this invocation. A resumed showcase times only what it trained itself; the runs'
    records give the whole study's training time, whichever invocation (or machine) ran each."""
    seconds = sum(s.get("train_seconds", 0.0) + s.get("predict_seconds", 0.0) for s in summaries)
    return {"runs_s": round(seconds, 1), "reused_runs": sum(1 for s in summaries if s.get("skipped"))}


def write_provenance(out: Path, data: Path, jobs: list[dict], device: str, timings: dict) -> dict:
    """``<out>/provenance.json``: what built the committed results; returns it."""
    provenance = {
        "settings": SETTINGS,
        "device": device,
        "data_manifest_sha256": sha256_file(data / MANIFEST_NAME),
        "content_digests": _content_digests(data),
        "commit": _commit(),
        "versions": _versions(),
        "timings": timings,
        "n_runs": len(jobs),
    }
    write_json_atomic(out / "provenance.json", provenance)
    return provenance


def _relative_job(job: dict, runs: Path) -> dict:
    """A job line without machine paths: what the plan decides, not where it ran."""
    config = {k: v for k, v in job["config"].items() if k not in ("data", "device")}
    return {
        "arch": job["arch"],
        "train_variant": job["train_variant"],
        "fold": job["fold"],
        "run_dir": str(Path(job["run_dir"]).relative_to(runs)),
        "config": config,
    }


def collect(runs: Path, data: Path, out: Path, jobs: list[dict]) -> None:
    """Copy what the site and the check need from ``runs`` and ``data`` into ``out`` (no checkpoints)."""
    for job in jobs:
        run_dir = Path(job["run_dir"])
        target = out / "runs" / run_dir.relative_to(runs)
        (target / "predictions").mkdir(parents=True, exist_ok=True)
        for name in COLLECTED:
            if (run_dir / name).is_file():
                shutil.copyfile(run_dir / name, target / name)
        for table in sorted((run_dir / "predictions").glob("*.csv")):
            shutil.copyfile(table, target / "predictions" / table.name)
    (out / "data").mkdir(parents=True, exist_ok=True)
    for path in sorted(data.iterdir()):
        if path.is_file() and path.suffix != ".h5" and not path.name.startswith("."):
            shutil.copyfile(path, out / "data" / path.name)
    if (data / "examples").is_dir():
        shutil.copytree(data / "examples", out / "data" / "examples", dirs_exist_ok=True)
    write_json_atomic(out / "jobs.json", [_relative_job(j, runs) for j in jobs])


def check_committed(out: str | os.PathLike, work: str | os.PathLike) -> list[str]:
    """What no longer matches between the committed showcase ``out`` and the code: [] when all does.

    Re-plans the sweep (the jobs must be the same) and rebuilds the twin's test_none and test_all
    under ``work`` (their content digests must equal the committed manifest's); a difference means the
    committed results came from other data or another plan, and ``make showcase`` must be rerun.
    """
    from training.run.sweep import load_jobs

    out, work = Path(out), Path(work)
    problems = []
    provenance = json.loads((out / "provenance.json").read_text())
    if provenance["settings"] != SETTINGS:
        problems.append(f"settings differ: committed {provenance['settings']}, code {SETTINGS}")
    runs = work / "runs"
    plan_jobs(out / "data", runs)
    planned = [_relative_job(j, runs.resolve()) for j in load_jobs(runs / "jobs.jsonl")]
    committed = json.loads((out / "jobs.json").read_text())
    if planned != committed:
        problems.append("the sweep plan differs from the committed jobs.json")
    data = build_data(work, progress=False, variants=[CLEAN_TEST, ALL_TEST])
    for name, digest in _content_digests(data).items():
        if provenance["content_digests"].get(name) != digest:
            problems.append(f"{name}: the current data build differs from the committed one")
    return problems


def _content_digests(data: Path) -> dict[str, str]:
    """Variant file name -> content digest, from the data folder's manifest."""
    return {e["name"]: e["content_digest"] for e in json.loads((data / MANIFEST_NAME).read_text())["files"]}


def _commit() -> str | None:
    """HEAD (``+dirty`` with uncommitted changes to tracked files); outside a git checkout (a source
    tree copied to a GPU machine without ``.git``), the commit named by ``$HAM_ARTEFACTS_COMMIT``."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("HAM_ARTEFACTS_COMMIT") or None
    return head + ("+dirty" if dirty else "")


def _versions() -> dict:
    import h5py
    import numpy
    import torch
    import torchvision

    from generator import __version__

    return {
        "ham-artefacts": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "h5py": h5py.__version__,
        "cuda": torch.version.cuda,
        "platform": platform.platform(),
    }


def register(sub) -> None:
    p = sub.add_parser(
        "showcase",
        help="run the published study on the calibrated synthetic twin (resumable)",
        description="Build the showcase data, train the showcase profile's runs, evaluate, "
        "Grad-CAM, and collect results with provenance (no checkpoints) into --out.",
    )
    p.add_argument("--out", default="results/showcase", help="committed results folder")
    p.add_argument("--work", default="showcase-work", help="data, checkpoints and logs (not committed)")
    p.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda or cuda:N")
    p.add_argument("--quiet", action="store_true", help="no progress bars or progress lines")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from generator.userio import refuse_non_folder
    from training.run.config import check_device

    check_device(args.device)
    refuse_non_folder(args.work, "--work")
    refuse_non_folder(args.out)
    provenance = run_showcase(args.work, args.out, args.device, progress=not args.quiet)
    timings = provenance["timings"]
    reused = (
        f" ({timings['reused_runs']} finished earlier; all runs' own time {timings['runs_s']:.0f} s)"
        if timings["reused_runs"]
        else ""
    )
    print(
        f"showcase: {provenance['n_runs']} runs in {timings['total_s']:.0f} s{reused} -> {args.out}",
        file=sys.stderr,
    )
    return 0
