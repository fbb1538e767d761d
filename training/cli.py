"""Commands ``train``, ``predict``, ``sweep plan`` and ``sweep run``. torch is imported inside run()."""

from __future__ import annotations

import argparse
import json
import sys

# TrainConfig fields settable from the command line (None = keep the profile's value).
_OVERRIDES = (
    ("--epochs", int, "epochs"),
    ("--batch-size", int, "batch_size"),
    ("--lr", float, "lr"),
    ("--image-size", int, "image_size"),
    ("--optimizer", str, "optimizer"),
    ("--schedule", str, "schedule"),
    ("--patience", int, "patience"),
    ("--workers", int, "workers"),
    ("--threads", int, "threads"),
    ("--device", str, "device"),
    ("--weights", str, "weights"),
    ("--max-train-images", int, "max_train_images"),
    ("--augment", str, "augment"),
    ("--augment-artefacts", float, "augment_artefacts"),
    ("--augment-templates", str, "augment_templates"),
)


def _add_overrides(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training settings (override the profile)")
    for flag, kind, dest in _OVERRIDES:
        group.add_argument(flag, type=kind, default=None, dest=dest)
    group.add_argument("--no-amp", action="store_true", help="disable bf16 autocast on CUDA")


def _overrides(args) -> dict:
    values = {dest: getattr(args, dest) for _, _, dest in _OVERRIDES if getattr(args, dest) is not None}
    if getattr(args, "no_amp", False):
        values["amp"] = False
    return values


def _add_selectors(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--archs", nargs="+", metavar="ARCH", help="architectures (default: the profile's)")
    parser.add_argument("--train-variants", nargs="+", metavar="VARIANT", help="training variants")
    parser.add_argument("--folds", nargs="+", type=int, metavar="K", help="folds (0-4)")


def register(sub) -> None:
    from training.run.sweep import ARCHS, PROFILES

    p = sub.add_parser(
        "train",
        help="train one model (arch x training variant x fold) and predict the test variants",
        description="Train one run into <out>/<arch>/<train_variant>/fold<k>/ (<train_variant>+aug with "
        "--augment-artefacts P > 0; resumes from last.pt). "
        "Under torchrun it trains with DDP.",
    )
    p.add_argument("--data", required=True, help="folder of <variant>.h5 files")
    p.add_argument("--out", required=True, help="runs folder")
    p.add_argument("--arch", required=True, choices=ARCHS)
    p.add_argument("--train-variant", default="train_none")
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", choices=sorted(PROFILES), default="paper")
    p.add_argument("--no-predict", action="store_true", help="skip the test-variant predictions")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_overrides(p)
    p.set_defaults(func=run_train)

    p = sub.add_parser(
        "predict",
        help="predict all 13 test variants with a trained run",
        description="Write <run>/predictions/<test_variant>.csv for every test variant.",
    )
    p.add_argument("--run", required=True, help="run folder (config.json + best.pt)")
    p.add_argument("--data", help="data folder (default: the one the run was trained on)")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--test-variants", nargs="+", metavar="VARIANT")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run_predict)

    p = sub.add_parser("sweep", help="plan or run the experiment grid (3 archs x 9 variants x 5 folds)")
    sweep_sub = p.add_subparsers(dest="sweep_command", metavar="{plan,run}")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    q = sweep_sub.add_parser("plan", help="write <out>/jobs.jsonl")
    q.add_argument("--data", required=True)
    q.add_argument("--out", required=True, help="runs folder")
    q.add_argument("--profile", choices=sorted(PROFILES), default="paper")
    q.add_argument("--seed", type=int, default=0)
    _add_selectors(q)
    _add_overrides(q)
    q.set_defaults(func=run_sweep_plan)

    q = sweep_sub.add_parser(
        "run",
        help="run one job (--index K) or all unfinished ones (--all)",
        description="Run jobs of <out>/jobs.jsonl. With --all and --data, plans first when "
        "the jobs file does not exist yet.",
    )
    q.add_argument("--out", help="runs folder holding jobs.jsonl")
    q.add_argument("--jobs", help="jobs file (default <out>/jobs.jsonl)")
    which = q.add_mutually_exclusive_group(required=True)
    which.add_argument("--index", type=int, help="run job K (e.g. $SLURM_ARRAY_TASK_ID)")
    which.add_argument("--all", action="store_true", help="run every selected job, skipping finished ones")
    q.add_argument("--data", help="plan first (when no jobs file exists) from this data folder")
    q.add_argument("--profile", choices=sorted(PROFILES), default="paper")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--quiet", action="store_true")
    _add_selectors(q)
    _add_overrides(q)
    q.set_defaults(func=run_sweep_run)


def _passive_openmp() -> None:
    """Let idle OpenMP threads sleep instead of spinning (unless the user chose otherwise).

    libgomp reads OMP_WAIT_POLICY once, when torch loads it, so this must run before ``import torch``.
    With spinning threads, every small tensor op of the data path (tiny-profile decode + transforms in
    the main process, 2 threads) cost ~100 ms an image instead of ~12 ms on a shared 2-core machine,
    and the big training ops ran no faster (measured for the tiny profile; see issue 4).
    """
    import os

    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def run_train(args) -> int:
    _passive_openmp()
    from training.run.engine import TrainConfig, run_dir_for, train
    from training.run.sweep import profile_config

    values = {
        **profile_config(args.profile, args.arch),
        **_overrides(args),
        "arch": args.arch,
        "data": args.data,
        "train_variant": args.train_variant,
        "fold": args.fold,
        "seed": args.seed,
        "predict": not args.no_predict,
    }
    if "threads" in values and values["threads"]:
        import torch

        torch.set_num_threads(values["threads"])
    config = TrainConfig.from_dict(values)
    run_dir = run_dir_for(args.out, args.arch, args.train_variant, args.fold, config.augment_artefacts)
    summary = train(config, run_dir, progress=not args.quiet)
    print(f"{run_dir}: {json.dumps(summary)}")
    return 0


def run_predict(args) -> int:
    _passive_openmp()
    from training.run.predict import predict_run

    written = predict_run(
        args.run,
        args.data,
        device=args.device,
        batch_size=args.batch_size,
        workers=args.workers,
        variants=args.test_variants,
        progress=not args.quiet,
    )
    print(f"wrote {len(written)} prediction tables to {written[0].parent if written else args.run}")
    return 0


def run_sweep_plan(args) -> int:
    from training.run.sweep import load_jobs, plan

    jobs = plan(
        args.data,
        args.out,
        args.profile,
        args.archs,
        args.train_variants,
        args.folds,
        args.seed,
        _overrides(args),
    )
    print(f"{jobs}: {len(load_jobs(jobs))} jobs")
    return 0


def run_sweep_run(args) -> int:
    _passive_openmp()
    from pathlib import Path

    from generator.errors import UserError
    from training.run.sweep import chance_check, plan, run_all, run_index

    if not args.jobs and not args.out:
        raise UserError("sweep run: give --out RUNS or --jobs FILE")
    jobs = Path(args.jobs) if args.jobs else Path(args.out) / "jobs.jsonl"
    if not jobs.is_file() and args.data and args.out:
        plan(
            args.data,
            args.out,
            args.profile,
            args.archs,
            args.train_variants,
            args.folds,
            args.seed,
            _overrides(args),
        )
    if args.index is not None:
        results = [run_index(jobs, args.index, progress=not args.quiet)]
    else:
        results = run_all(
            jobs,
            args.archs,
            args.train_variants,
            args.folds,
            progress=not args.quiet,
            report=lambda line: print(line, file=sys.stderr, flush=True),
        )
    for job, summary in results:
        line = {
            "run_dir": job["run_dir"],
            "best_val_macro_pr_auc": summary.get("best_val_macro_pr_auc"),
            "skipped": bool(summary.get("skipped")),
        }
        if (Path(job["run_dir"]) / "predictions" / "test_none.csv").is_file():
            line["test_none"] = chance_check(job["run_dir"])
        print(json.dumps(line), file=sys.stdout)
    return 0
