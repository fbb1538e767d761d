"""Commands ``train``, ``predict``, ``sweep plan`` and ``sweep run``. torch is imported inside run()."""

from __future__ import annotations

import argparse
import json
import sys


class _Choices:
    """A TrainConfig field's choices, read from its registry only when argparse needs them (to check a
    given value, or to write --help): most registries import torch, which ``ham-artefacts insert`` and
    every other command must not pay for when the parser is built."""

    def __init__(self, name: str):
        self.name = name

    def _names(self) -> list[str]:
        from training.run.config import choices_of

        return choices_of(self.name) or []

    def __contains__(self, value) -> bool:
        return value in self._names()

    def __iter__(self):
        return iter(self._names())


def _value_type(name: str) -> type:
    """A TrainConfig field's type without None (``int | None`` -> int): the option's argparse ``type``."""
    from typing import get_args, get_type_hints

    from training.run.config import TrainConfig

    hint = get_type_hints(TrainConfig)[name]
    return next((kind for kind in get_args(hint) if kind is not type(None)), hint)


def add_config_option(parser, name: str, **settings) -> None:
    """The option of TrainConfig field ``name``, its flag, type, help and choices generated from the
    field; ``settings`` (default, required) are argparse's. A field that is True by default gets a
    ``--no-<name>`` flag that turns it off."""
    from training.run.config import FIELDS, flag_of

    metadata = FIELDS[name].metadata
    help_text = metadata["help"].replace("%", "%%")
    if _value_type(name) is bool:
        flag = "--no-" + flag_of(name).removeprefix("--")
        parser.add_argument(
            flag, dest=name, action="store_const", const=False, help=f"no {help_text}", **settings
        )
        return
    if metadata["choices"]:
        # an explicit metavar: argparse would otherwise read the choices to write the usage line
        settings.update(choices=_Choices(name), metavar=name.upper())
        help_text += ": %(choices)s"
    parser.add_argument(flag_of(name), dest=name, type=_value_type(name), help=help_text, **settings)


def _override_names() -> list[str]:
    from training.run.config import FIELDS

    return [name for name, spec in FIELDS.items() if spec.metadata["override"]]


def _add_overrides(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training settings (each overrides the profile's value)")
    for name in _override_names():
        add_config_option(group, name, default=None)


def _overrides(args) -> dict:
    """The override flags given, each checked before any work (a UserError naming the flag)."""
    from training.run.config import check_value

    values = {name: getattr(args, name) for name in _override_names() if getattr(args, name) is not None}
    for name, value in values.items():
        check_value(name, value)
    return values


def _add_selectors(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--archs", nargs="+", metavar="ARCH", help="architectures (default: the profile's)")
    parser.add_argument("--train-variants", nargs="+", metavar="VARIANT", help="training variants")
    parser.add_argument("--folds", nargs="+", type=int, metavar="K", help="folds (0-4)")


PROFILE_HELP = "where every setting not given as a flag comes from (training/run/profiles/<name>.toml)"
QUIET_HELP = "no progress bars or progress lines (as ham-artefacts --quiet)"


def _add_wait(parser, extra: str = "") -> None:
    from training.run.config import RUN_LOCK_WAIT_S

    parser.add_argument(
        "--wait",
        type=float,
        default=RUN_LOCK_WAIT_S,
        metavar="SECONDS",
        help="how long to wait for another process writing the run folder before stopping with its "
        f"name{extra} (default: %(default)s)",
    )


def register(sub) -> None:
    from generator.variants import CLEAN_TRAIN
    from training.run.sweep import PROFILES

    p = sub.add_parser(
        "train",
        help="train one model (arch x training variant x fold) and predict the test variants",
        description="Train one run into <out>/<arch>/<train_variant>/fold<k>/ (<train_variant>+aug with "
        "--augment-artefacts P > 0; resumes from last.pt). "
        "Under torchrun it trains with DDP.",
    )
    p.add_argument("--data", required=True, help="folder of <variant>.h5 files")
    p.add_argument("--out", required=True, help="runs folder")
    add_config_option(p, "arch", required=True)
    add_config_option(p, "train_variant", default=CLEAN_TRAIN)
    add_config_option(p, "fold", default=0)
    add_config_option(p, "seed", default=0)
    p.add_argument("--profile", choices=sorted(PROFILES), default="paper", help=PROFILE_HELP)
    add_config_option(p, "predict", default=True)
    p.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    _add_wait(p)
    _add_overrides(p)
    p.set_defaults(func=run_train)

    p = sub.add_parser(
        "predict",
        help="predict all 13 test variants with a trained run",
        description="Write <run>/predictions/<test_variant>.csv for every test variant.",
    )
    p.add_argument("--run", required=True, help="run folder (config.json + best.pt)")
    p.add_argument("--data", help="data folder (default: the one the run was trained on)")
    add_config_option(p, "device", default="auto")
    p.add_argument("--batch-size", type=int, help="batch size (default: the run's evaluation batch size)")
    add_config_option(p, "workers", default=0)
    p.add_argument("--test-variants", nargs="+", metavar="VARIANT", help="only these (default: all 13)")
    p.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    _add_wait(p)
    p.set_defaults(func=run_predict)

    p = sub.add_parser("sweep", help="plan or run the experiment grid (3 archs x 9 variants x 5 folds)")
    sweep_sub = p.add_subparsers(dest="sweep_command", metavar="{plan,run}")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    q = sweep_sub.add_parser("plan", help="write <out>/jobs.jsonl")
    q.add_argument("--data", required=True, help="folder of <variant>.h5 files")
    q.add_argument("--out", required=True, help="runs folder")
    q.add_argument("--profile", choices=sorted(PROFILES), default="paper", help=PROFILE_HELP)
    add_config_option(q, "seed", default=0)
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
    q.add_argument("--profile", choices=sorted(PROFILES), default="paper", help=PROFILE_HELP)
    add_config_option(q, "seed", default=0)
    q.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    _add_wait(q, "; --all skips such a job")
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
    from training.run.config import TrainConfig, run_dir_for
    from training.run.sweep import profile_config

    values = {
        **profile_config(args.profile, args.arch),
        **_overrides(args),
        "arch": args.arch,
        "data": args.data,
        "train_variant": args.train_variant,
        "fold": args.fold,
        "seed": args.seed,
        "predict": args.predict,
    }
    if "threads" in values and values["threads"]:
        import torch

        torch.set_num_threads(values["threads"])
    config = TrainConfig.from_dict(values)
    run_dir = run_dir_for(args.out, args.arch, args.train_variant, args.fold, config.augment_artefacts)
    from training.run.engine import train

    summary = train(config, run_dir, progress=not args.quiet, wait=args.wait)
    print(f"{run_dir}: {json.dumps(summary)}")
    return 0


def run_predict(args) -> int:
    from training.run.config import check_device

    check_device(args.device)
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
        wait=args.wait,
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
    from generator.variants import CLEAN_TEST
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
        results = [run_index(jobs, args.index, progress=not args.quiet, wait=args.wait)]
    else:
        results = run_all(jobs, args.archs, args.train_variants, args.folds, progress=not args.quiet)
    for job, summary in results:
        line = {
            "run_dir": job["run_dir"],
            "best_val_macro_pr_auc": summary.get("best_val_macro_pr_auc"),
            "skipped": bool(summary.get("skipped")),
        }
        if "busy" in summary:  # another process is training it: its tables are not ours to read yet
            line["busy"] = summary["busy"]
        elif (Path(job["run_dir"]) / "predictions" / f"{CLEAN_TEST}.csv").is_file():
            line[CLEAN_TEST] = chance_check(job["run_dir"])
        print(json.dumps(line), file=sys.stdout)
    return 0
