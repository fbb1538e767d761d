"""Fabricated evaluation results + data manifest with the exact schemas the evaluation writes.

The site export reads only tables, so its tests do not need a trained model: these helpers
write a results folder and a data folder (manifest.json + examples/<kind>.png) whose numbers
are random but well-formed, seeded, and known to the test that made them.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from generator import CLASSES
from generator.artefacts.kinds import DEFAULT_FAMILIES, FAMILIES
from generator.variants import ALL_TEST, CLEAN_TEST, CLEAN_TRAIN, list_variants
from training.evaluation.curves import PCT_ARTEFACT
from training.evaluation.metrics import METRICS
from training.models import ARCHITECTURES

ARCHS = tuple(ARCHITECTURES)
TRAIN_VARIANTS = tuple(list_variants("train"))
TEST_VARIANTS = tuple(list_variants("test"))
KINDS = tuple(kind for family in DEFAULT_FAMILIES for kind in FAMILIES[family])

PCT_TO_TEST = {pct: test for test, pct in sorted(PCT_ARTEFACT.items(), key=lambda item: item[1])}
# Known headline values, so tests can find them on the overview page.
BASELINE_PR_AUC = {"resnet34": 0.8123, "fasterrcnn_resnet34": 0.7345, "maskrcnn_resnet34": 0.7012}


def baseline_summary(baselines: dict[str, float]) -> pd.DataFrame:
    """metrics_summary rows holding only each architecture's baseline: train_none's macro PR-AUC on
    test_none (the smoke-run rule's number)."""
    return pd.DataFrame(
        [
            dict(
                arch=arch,
                train_variant=CLEAN_TRAIN,
                test_variant=CLEAN_TEST,
                metric="pr_auc",
                **{"class": "macro"},
                mean=value,
                ci_lo=value - 0.05,
                ci_hi=value + 0.05,
                n_folds=1,
                delta_vs_test_none=0.0,
                delta_vs_train_none=0.0,
            )
            for arch, value in baselines.items()
        ]
    )


def _write_table(folder: Path, stem: str, frame: pd.DataFrame) -> None:
    if frame.empty:  # an empty table still has its header row, as the evaluation writes it
        from training.export.results import SCHEMAS

        frame = pd.DataFrame(columns=list(SCHEMAS[stem]))
    path = folder / f"{stem}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    frame.to_json(path.with_suffix(".json"), orient="records", indent=1)


def _classes_for(metric: str) -> tuple[str, ...]:
    return ("all",) if metric in ("accuracy", "balanced_accuracy") else ("macro",) + CLASSES


def _png(rgb: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb.astype(np.uint8)).save(path)


def _picture(rng: np.random.Generator, h: int = 48, w: int = 64, artefact: bool = False) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    skin = np.array([220, 170, 150]) + rng.integers(-15, 15, 3)
    image = np.broadcast_to(skin, (h, w, 3)).copy()
    lesion = (yy - h / 2) ** 2 / (h / 4) ** 2 + (xx - w / 2) ** 2 / (w / 5) ** 2 < 1
    image[lesion] = [110, 70, 50]
    if artefact:
        image[h // 5 : h // 5 + 3, :] = [20, 20, 20]
    return image


def write_results(
    root: str | Path,
    *,
    synthetic: bool = True,
    seed: int = 0,
    archs=ARCHS,
    gradcam: bool = True,
    train_variants=TRAIN_VARIANTS,
    controls: bool = True,
) -> Path:
    """Write a results folder (every table of the evaluation contract) under ``root``.

    ``train_variants`` < all nine gives a partial grid like the tiny demo profile's: the tables only
    have rows for those variants (bias / bias_shift empty when no train_<class> is among them).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    base = {arch: BASELINE_PR_AUC.get(arch, 0.75) for arch in archs}
    summary_rows, metric_rows = [], []
    for arch in archs:
        for train in train_variants:
            for test in TEST_VARIANTS:
                for metric in METRICS:
                    for cls in _classes_for(metric):
                        if (
                            train == CLEAN_TRAIN
                            and test == CLEAN_TEST
                            and metric == "pr_auc"
                            and cls == "macro"
                        ):
                            mean = base[arch]
                        else:
                            mean = float(np.clip(base[arch] + rng.normal(0, 0.05), 0.01, 0.99))
                        half = float(rng.uniform(0.01, 0.05))
                        summary_rows.append(
                            dict(
                                arch=arch,
                                train_variant=train,
                                test_variant=test,
                                metric=metric,
                                **{"class": cls},
                                mean=mean,
                                ci_lo=mean - half,
                                ci_hi=mean + half,
                                n_folds=1,
                                delta_vs_test_none=0.0
                                if test == CLEAN_TEST
                                else float(rng.normal(-0.02, 0.01)),
                                delta_vs_train_none=0.0
                                if train == CLEAN_TRAIN
                                else float(rng.normal(-0.05, 0.03)),
                            )
                        )
                        metric_rows.append(
                            dict(
                                arch=arch,
                                train_variant=train,
                                fold=0,
                                test_variant=test,
                                metric=metric,
                                **{"class": cls},
                                value=mean,
                                boot_lo=mean - half,
                                boot_hi=mean + half,
                            )
                        )
    _write_table(root, "metrics_summary", pd.DataFrame(summary_rows))
    _write_table(root, "metrics", pd.DataFrame(metric_rows))

    curve_rows = []
    for arch in archs:
        for train in train_variants:
            for cls in ("macro",) + CLASSES:
                start = base[arch] if cls == "macro" else float(rng.uniform(0.5, 0.95))
                slope = float(rng.uniform(0.0, 0.06))
                for pct in PCT_TO_TEST:
                    mean = start - slope * pct / 100
                    half = float(rng.uniform(0.01, 0.04))
                    curve_rows.append(
                        dict(
                            arch=arch,
                            train_variant=train,
                            pct_artefact=pct,
                            **{"class": cls},
                            mean=mean,
                            ci_lo=mean - half,
                            ci_hi=mean + half,
                        )
                    )
    _write_table(root, "curves", pd.DataFrame(curve_rows))

    mc_rows = []
    for arch in archs:
        for train in train_variants:
            for test in TEST_VARIANTS[1:]:
                n01, n10 = (int(x) for x in rng.integers(0, 30, 2))
                n11 = int(rng.integers(100, 200))
                n00 = int(rng.integers(5, 40))
                stat = (abs(n01 - n10) - 1) ** 2 / max(n01 + n10, 1)
                p = float(np.exp(-stat / 2))
                p_holm = min(1.0, p * 3)
                mc_rows.append(
                    dict(
                        arch=arch,
                        train_variant=train,
                        fold=0,
                        test_variant=test,
                        n00=n00,
                        n01=n01,
                        n10=n10,
                        n11=n11,
                        statistic=stat,
                        p_value=p,
                        p_exact=p if n01 + n10 < 25 else float("nan"),
                        p_holm=p_holm,
                        significant=bool(p_holm < 0.05),
                        family=f"{arch}/{train}",
                    )
                )
    _write_table(root, "mcnemar", pd.DataFrame(mc_rows))

    bias_rows, shift_rows = [], []
    for arch in archs:
        for biased in CLASSES:
            train = f"train_{biased}"
            if train not in train_variants:
                continue
            for test in (CLEAN_TEST, ALL_TEST):
                for cls in CLASSES:
                    for metric in ("recall", "fpr", "fnr"):
                        baseline = float(rng.uniform(0.05, 0.9))
                        shift = float(rng.normal(0, 0.08))
                        bias_rows.append(
                            dict(
                                arch=arch,
                                train_variant=train,
                                biased_class=biased,
                                test_variant=test,
                                **{"class": cls},
                                metric=metric,
                                value=baseline + shift,
                                baseline=baseline,
                                shift=shift,
                            )
                        )
                share_baseline = float(rng.uniform(0.05, 0.4))
                share_biased = share_baseline + float(rng.uniform(0.0, 0.2))
                shift_rows.append(
                    dict(
                        arch=arch,
                        train_variant=train,
                        biased_class=biased,
                        test_variant=test,
                        share_biased=share_biased,
                        share_baseline=share_baseline,
                        shift=share_biased - share_baseline,
                    )
                )
    _write_table(root, "bias", pd.DataFrame(bias_rows))
    _write_table(root, "bias_shift", pd.DataFrame(shift_rows))

    flip_rows = []
    for arch in archs:
        for train in [v for v in (CLEAN_TRAIN, "train_all") if v in train_variants]:
            for kind in ("all",) + KINDS:
                n = int(rng.integers(20, 200))
                flipped = int(rng.integers(0, n // 4))
                flip_rows.append(
                    dict(
                        arch=arch,
                        train_variant=train,
                        test_variant=ALL_TEST,
                        kind=kind,
                        n=n,
                        n_flipped=flipped,
                        share=flipped / n,
                    )
                )
    _write_table(root, "flips", pd.DataFrame(flip_rows))

    if controls:
        _write_controls(root, archs, train_variants)

    if gradcam:
        index_rows, attention_rows = [], []
        for arch in archs:
            for train in [v for v in (CLEAN_TRAIN, "train_all") if v in train_variants]:
                values = []
                for i in range(2):
                    image_id = f"ISIC_00{i:05d}"
                    folder = Path("gradcam") / arch / train
                    clean, artefacted = folder / f"{image_id}_clean.png", folder / f"{image_id}_artefact.png"
                    _png(_picture(rng), root / clean)
                    _png(_picture(rng, artefact=True), root / artefacted)
                    attention = float(rng.uniform(0, 0.5))
                    values.append(attention)
                    index_rows.append(
                        dict(
                            arch=arch,
                            train_variant=train,
                            image_id=image_id,
                            dx=CLASSES[i],
                            kind=KINDS[i],
                            clean_png=clean.as_posix(),
                            artefact_png=artefacted.as_posix(),
                            attention_clean=float(rng.uniform(0, 0.1)),
                            attention_artefact=attention,
                        )
                    )
                mean = float(np.mean(values))
                attention_rows.append(
                    dict(
                        arch=arch,
                        train_variant=train,
                        n=len(values),
                        attention_mean=mean,
                        attention_ci_lo=mean - 0.05,
                        attention_ci_hi=mean + 0.05,
                    )
                )
        _write_table(root, "gradcam/index", pd.DataFrame(index_rows))
        _write_table(root, "gradcam/attention", pd.DataFrame(attention_rows))

    (root / "results.json").write_text(
        json.dumps(
            {
                "synthetic": synthetic,
                "runs": "demo/runs",
                "generated_by": "0.1.0",
                "archs": list(archs),
                "train_variants": list(train_variants),
                "definitions": {
                    "mcnemar": "Fixture McNemar definition: n10 = correct clean, wrong with artefact.",
                    "pr_auc": "Fixture PR-AUC definition.",
                },
            },
            indent=2,
        )
    )
    return root


# Known control numbers, so tests can find them on the overview: (shift_pp, did_pp, p) per architecture.
POSITIVE_CONTROL = {
    "resnet34": (31.25, 27.5, 3.2e-7),
    "fasterrcnn_resnet34": (8.75, 6.25, 0.042),
    "maskrcnn_resnet34": (12.5, 16.25, 0.0021),
}
NEGATIVE_SHIFT = {"resnet34": -1.25, "fasterrcnn_resnet34": 2.5, "maskrcnn_resnet34": 6.25}
KIND_SHIFT = {
    "bubble": 3.5,
    "ruler_horizontal": -0.75,
    "ruler_vertical": 0.0,
    "marking_circle": 1.25,
    "marking_spot": 7.0,
}


def _write_controls(root: Path, archs, train_variants) -> None:
    """controls, effects_summary and effects rows for the positive/negative/identity controls."""
    rows, summary, effects, by_kind = [], [], [], []
    for arch in archs:
        shift, did, p = POSITIVE_CONTROL.get(arch, (10.0, 10.0, 0.05))
        negative = NEGATIVE_SHIFT.get(arch, 0.0)
        common = dict(
            arch=arch, reference_class="nv", n_runs=1, n_images=120, interval="1 run: bootstrap over images"
        )
        if "train_nv" in train_variants:
            passed = did >= 15 and p < 0.01
            rows.append(
                dict(
                    control="positive",
                    train_variant="train_nv",
                    test_variant=ALL_TEST,
                    **common,
                    shift_pp=shift,
                    shift_lo=shift - 8,
                    shift_hi=shift + 8,
                    did_pp=did,
                    did_lo=did - 9,
                    did_hi=did + 9,
                    p_mcnemar_ref_max=p,
                    rule="did_pp >= 15 and exact McNemar p < 0.01",
                    status="pass" if passed else "fail",
                    passed=passed,
                )
            )
        else:
            rows.append(
                dict(
                    control="positive",
                    arch=arch,
                    train_variant="train_nv",
                    test_variant=ALL_TEST,
                    reference_class="nv",
                    n_runs=0,
                    rule="did_pp >= 15",
                    status="not available",
                )
            )
        rows.append(
            dict(
                control="negative",
                train_variant=CLEAN_TRAIN,
                test_variant=ALL_TEST,
                **common,
                shift_pp=negative,
                shift_lo=negative - 4,
                shift_hi=negative + 4,
                p_mcnemar_ref_max=0.5,
                rule="|shift_pp| <= 5",
                status="pass" if abs(negative) <= 5 else "fail",
                passed=abs(negative) <= 5,
            )
        )
        rows.append(
            dict(
                control="identity",
                train_variant=CLEAN_TRAIN,
                test_variant=CLEAN_TEST,
                **common,
                shift_pp=0.0,
                shift_lo=0.0,
                shift_hi=0.0,
                p_mcnemar_ref_max=1.0,
                rule="exactly 0",
                status="pass",
                passed=True,
            )
        )
        for train in train_variants:
            value = shift if train == "train_nv" else negative
            summary.append(
                dict(
                    arch=arch,
                    train_variant=train,
                    test_variant=ALL_TEST,
                    reference_class="nv",
                    n_runs=1,
                    folds="0",
                    interval="1 run: bootstrap over images",
                    shift_mean=value,
                    shift_lo=value - 5,
                    shift_hi=value + 5,
                    shift_runs=f"{value:g}",
                    did_mean=did if train == "train_nv" else float("nan"),
                    did_lo=float("nan"),
                    did_hi=float("nan"),
                    did_runs="",
                    p_mcnemar_ref_max=p,
                    p_mcnemar_ref_runs=f"{p:g}",
                )
            )
            for kind in KINDS:  # known per-kind shifts: KIND_SHIFT[kind] + the model's shift
                kind_value = value + KIND_SHIFT[kind]
                by_kind.append(
                    dict(
                        arch=arch,
                        train_variant=train,
                        test_variant=ALL_TEST,
                        kind=kind,
                        reference_class="nv",
                        n_runs=1,
                        folds="0",
                        interval="1 run: bootstrap over images",
                        shift_mean=kind_value,
                        shift_lo=kind_value - 9,
                        shift_hi=kind_value + 9,
                        shift_runs=f"{kind_value:g}",
                        did_mean=float("nan"),
                        did_lo=float("nan"),
                        did_hi=float("nan"),
                        did_runs="",
                        p_mcnemar_ref_max=p,
                        p_mcnemar_ref_runs=f"{p:g}",
                    )
                )
            effects.append(
                dict(
                    arch=arch,
                    train_variant=train,
                    fold=0,
                    test_variant=ALL_TEST,
                    reference_class="nv",
                    n=120,
                    pct_ref_clean=10.0,
                    pct_ref_artefact=10.0 + value,
                    shift_pp=value,
                    pct_to=max(value, 0.0),
                    pct_away=max(-value, 0.0),
                    p_mcnemar_ref=p,
                    p_mcnemar_correct=0.5,
                    did_pp=float("nan"),
                    did_lo=float("nan"),
                    did_hi=float("nan"),
                )
            )
    from training.evaluation.controls import CONTROL_COLUMNS

    _write_table(root, "controls", pd.DataFrame(rows).reindex(columns=CONTROL_COLUMNS))
    _write_table(root, "effects_summary", pd.DataFrame(summary))
    _write_table(root, "effects", pd.DataFrame(effects))
    _write_table(root, "effects_by_kind_summary", pd.DataFrame(by_kind))


def write_data(
    root: str | Path, *, synthetic: bool = True, base_url: str | None = None, seed: int = 0
) -> Path:
    """Write manifest.json (22 variants, exact schema) and examples/<kind>.png under ``root``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    files = []
    for variant in TRAIN_VARIANTS + TEST_VARIANTS:
        split = variant.split("_")[0]
        counts = {c: int(rng.integers(2, 50)) for c in CLASSES}
        rows = sum(counts.values())
        kinds = {k: int(rng.integers(0, 10)) for k in KINDS} if not variant.endswith("_none") else {}
        files.append(
            {
                "name": f"{variant}.h5",
                "variant": variant,
                "split": split,
                "description": f"{split} images; artefact rule for {variant}",
                "sha256": hashlib.sha256(variant.encode()).hexdigest(),
                "bytes": int(rng.integers(10**5, 10**7)),
                "rows": rows,
                "class_counts": counts,
                "artefact_counts": kinds,
                "n_artefact": sum(kinds.values()),
                "content_digest": hashlib.sha256(b"content " + variant.encode()).hexdigest(),
            }
        )
    manifest = {
        "format": "ham-artefacts-manifest/1",
        "generator_version": "0.1.0",
        "seed": seed,
        "source_fingerprint": "f" * 16,
        "templates": "builtin:abc123",
        "image_size": [128, 96],
        "synthetic": synthetic,
        "base_url": base_url,
        "licence": "CC BY-NC-SA 4.0",
        "citation": "Katsch, Rinner & Tschandl 2022",
        "files": files,
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    for kind in KINDS:
        pair = np.concatenate([_picture(rng), _picture(rng, artefact=True)], axis=1)
        _png(pair, root / "examples" / f"{kind}.png")
    return root


# ---- a throw-away copy of the MkDocs project, exported from fabricated tables and built ----

REPO = Path(__file__).resolve().parents[2]
from training.export.site import PAGES as GENERATED_PAGES  # noqa: E402


def make_site_project(root: str | Path) -> Path:
    """Copy the hand-written site sources and mkdocs.yml into ``root`` (never touching the repo's site/)."""
    import shutil

    import yaml

    root = Path(root)
    ignore = shutil.ignore_patterns("generated", ".generated-*", *GENERATED_PAGES)
    shutil.copytree(REPO / "site", root / "site", ignore=ignore)
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    config["hooks"] = [str(REPO / h) for h in config.get("hooks", [])]
    (root / "mkdocs.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    # Seed the Vega bundle (the export reuses it when its version header matches): saves ~5 s per export.
    target = root / "site" / "generated" / "vendor" / "vega-bundle.js"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(vega_bundle(), target)
    return root


@functools.lru_cache(maxsize=1)
def vega_bundle() -> Path:
    """The Vega bundle matching the installed altair: the repo's own if an export already made it, else
    one written once into the temp folder, keyed by its version header (a cache, like a download's)."""
    import hashlib
    import os
    import tempfile

    from training.export.assets import bundle_header, write_vega_bundle

    header = bundle_header()
    existing = REPO / "site" / "generated" / "vendor" / "vega-bundle.js"
    if existing.is_file() and existing.open(encoding="utf-8").readline() == header:
        return existing
    cached = (
        Path(tempfile.gettempdir())
        / f"ham-artefacts-vega-{hashlib.sha256(header.encode()).hexdigest()[:16]}.js"
    )
    if not (cached.is_file() and cached.open(encoding="utf-8").readline() == header):
        partial = cached.with_suffix(f".{os.getpid()}.partial")
        write_vega_bundle(partial)
        os.replace(partial, cached)
    return cached


def export_and_build(
    root: str | Path,
    *,
    synthetic: bool = True,
    build: bool = True,
    train_variants=TRAIN_VARIANTS,
    archs=ARCHS,
) -> Path:
    """Fabricate results + data under ``root``, export into a project copy, build it; return the project."""
    from training.export.site import build_site, export_site

    root = Path(root)
    project = make_site_project(root / "project")
    write_results(root / "results", synthetic=synthetic, train_variants=train_variants, archs=archs)
    write_data(root / "data", synthetic=synthetic)
    export_site(
        root / "results", root / "data", project / "site", citation=REPO / "CITATION.cff", progress=False
    )
    if build:
        build_site(project / "mkdocs.yml")
    return project


def build_partial_site(root: Path) -> Path:
    """A built project from a partial grid, as the tiny demo profile makes: train_none + train_nv, one fold,
    Mask R-CNN missing, NaN holes in the curves (a class without test images)."""
    from training.export.site import build_site, export_site

    project = make_site_project(root / "project")
    results = write_results(root / "results", train_variants=(CLEAN_TRAIN, "train_nv"), archs=ARCHS[:2])
    curves = pd.read_csv(results / "curves.csv")
    curves.loc[curves["class"] == "df", ["mean", "ci_lo", "ci_hi"]] = float("nan")
    curves.to_csv(results / "curves.csv", index=False)
    write_data(root / "data")
    export_site(results, root / "data", project / "site", citation=REPO / "CITATION.cff", progress=False)
    build_site(project / "mkdocs.yml")
    return project
