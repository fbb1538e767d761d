"""evaluate's input checks (training.evaluation.run_checks): every way a table can silently move a metric.

First the checks on hand-made tables, then each case of issue 24 through the real ``ham-artefacts evaluate``
(one stderr line naming the run, the table and the first bad row; exit 2), then ``--data`` against a tiny
data folder built by the generator.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from generator import CLASSES
from generator.cli import main
from generator.errors import UserError
from generator.variants import ALL_TEST, CLEAN_TEST, CLEAN_TRAIN, VARIANTS, list_variants
from generator.variants.manifest import MANIFEST_NAME
from training.evaluation import run_checks
from training.models import list_architectures

ARCH = list_architectures()[0]
TEST_VARIANTS = list_variants("test")
PERCENT_VARIANTS = [v for v in TEST_VARIANTS if VARIANTS[v].rule == "percent"]


def consistent_tables(n: int = 70, seed: int = 0) -> dict[str, pd.DataFrame]:
    """One run's 13 tables, each as the variant defines it (the registry's own selection rule)."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"ISIC_{i:07d}" for i in range(n)], dtype=object)
    y_true = np.arange(n) % len(CLASSES)
    tables = {}
    for variant in TEST_VARIANTS:
        has = VARIANTS[variant].selection(y_true, list(ids), seed).astype(np.int64)
        scores = rng.dirichlet(np.ones(len(CLASSES)), n)
        tables[variant] = pd.DataFrame(
            {
                "image_id": ids.copy(),
                "y_true": y_true.copy(),
                "y_pred": scores.argmax(1),
                "has_artefact": has,
                "artefact_kind": np.where(has == 1, "bubble", ""),
            }
        )
    return tables


def test_consistent_tables_pass_in_any_row_order():
    run_checks.check_run("runs/r", consistent_tables())
    tables = consistent_tables()
    tables[ALL_TEST] = tables[ALL_TEST].iloc[::-1].reset_index(drop=True)
    run_checks.check_run("runs/r", tables)
    tables[ALL_TEST].loc[0, "y_true"] = 0  # the image of the file's first data row (line 2)
    with pytest.raises(
        UserError, match=r"test_all\.csv: row 2 \(ISIC_0000069\): y_true 0, test_none\.csv says 6"
    ):
        run_checks.check_run("runs/r", tables)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda t: t.pop("test_60"), r"^runs/r: no prediction table for test_60"),
        (
            lambda t: t.__setitem__("test_old", t[ALL_TEST]),
            r"^runs/r/predictions/test_old\.csv: not a test variant",
        ),
        (
            lambda t: t.__setitem__(ALL_TEST, t[ALL_TEST].drop(index=3)),
            r"test_all\.csv: 69 rows, test_none\.csv has 70: no row for image ISIC_0000003$",
        ),
        (
            lambda t: t[ALL_TEST].loc.__setitem__((5, "image_id"), "ISIC_9999999"),
            r"test_all\.csv: row 7 is image ISIC_9999999, which test_none\.csv does not have$",
        ),
        (
            lambda t: t["test_bcc"].loc.__setitem__((4, "y_true"), 0),
            r"test_bcc\.csv: row 6 \(ISIC_0000004\): y_true 0, test_none\.csv says 4$",
        ),
        (
            lambda t: t["test_mel"].loc.__setitem__((3, "has_artefact"), 1),
            r"test_mel\.csv: row 5 \(ISIC_0000003\): has_artefact 1, test_mel's definition says 0$",
        ),
        (
            lambda t: t[CLEAN_TEST].loc.__setitem__((0, "has_artefact"), 1),
            r"test_none\.csv: row 2 \(ISIC_0000000\): has_artefact 1, test_none's definition says 0$",
        ),
        (
            lambda t: t[CLEAN_TEST].loc.__setitem__((0, "artefact_kind"), "bubble"),
            r"test_none\.csv: row 2 \(ISIC_0000000\): artefact_kind 'bubble' with has_artefact 0$",
        ),
        (
            lambda t: t["test_40"].loc.__setitem__(
                (0, "has_artefact"), 1 - t["test_40"].loc[0, "has_artefact"]
            ),
            r"test_40\.csv: \d+ akiec images have an artefact, test_40 puts one on \d+$",
        ),
    ],
)
def test_each_damage_is_one_line_naming_run_table_and_row(damage, message):
    tables = consistent_tables()
    damage(tables)
    with pytest.raises(UserError, match=message):
        run_checks.check_run("runs/r", tables)


def test_percent_variants_must_be_nested():
    tables = consistent_tables()
    t20, t40 = tables["test_20"], tables["test_40"]
    # same counts per class, but test_20 picks an image test_40 does not: swap within one class
    cls0 = t20.index[(t20["y_true"] == 0)]
    inside = [i for i in cls0 if t20.loc[i, "has_artefact"] == 1][0]
    outside = [i for i in cls0 if t40.loc[i, "has_artefact"] == 0][0]
    t20.loc[inside, "has_artefact"], t20.loc[outside, "has_artefact"] = 0, 1
    t20.loc[inside, "artefact_kind"], t20.loc[outside, "artefact_kind"] = "", "bubble"
    with pytest.raises(
        UserError, match=rf"test_40\.csv: row {outside + 2} .*has no artefact, but it has one in test_20$"
    ):
        run_checks.check_run("runs/r", tables)


def test_tables_are_checked_against_the_frozen_files():
    tables = consistent_tables()
    data = {
        v: {"file": f"data/{v}.h5", **{c: t[c].to_numpy() for c in run_checks.DATA_COLUMNS}}
        for v, t in tables.items()
    }
    run_checks.check_run("runs/r", tables, data)
    data[ALL_TEST]["y_true"] = np.roll(data[ALL_TEST]["y_true"], 1)
    # the tables agree with each other, not with the data
    with pytest.raises(
        UserError, match=r"test_all\.csv: row 2 \(ISIC_0000000\): y_true 0, data/test_all\.h5 says 6$"
    ):
        run_checks.check_run("runs/r", tables, data)


def test_unfinished_runs_are_set_apart_unless_included(tmp_path):
    done, open_ = tmp_path / "a", tmp_path / "b"
    done.mkdir(), open_.mkdir()
    (done / run_checks.DONE_NAME).write_text("")
    runs = [SimpleNamespace(path=done), SimpleNamespace(path=open_)]
    assert run_checks.split_finished(runs) == ([runs[0]], [runs[1]])
    assert run_checks.split_finished(runs, include_unfinished=True) == (runs, [])


# ---- through the CLI -------------------------------------------------------------------------------------


def _evaluate(capsys, runs: Path, out: Path, *extra: str) -> tuple[int, list[str]]:
    """exit code and stderr lines of `ham-artefacts --quiet evaluate` (no progress bars, no bootstrap)."""
    capsys.readouterr()
    code = main(["--quiet", "evaluate", "--runs", str(runs), "--out", str(out), "--bootstrap", "0", *extra])
    return code, capsys.readouterr().err.strip().splitlines()


def _rewrite(csv: Path, edit) -> None:
    """Apply ``edit`` to the table's rows (lists of fields; header excluded) and write it back."""
    header, *rows = [line.split(",") for line in csv.read_text().splitlines()]
    rows = edit(rows, header) or rows
    csv.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")


def _set(rows, header, row, column, value):
    rows[row][header.index(column)] = value


def _drop_row_4(rows, header):
    del rows[3]


def _flip_a_non_mel_row(rows, header):
    row = next(i for i, r in enumerate(rows) if r[header.index("y_true")] != str(CLASSES.index("mel")))
    _set(rows, header, row, "has_artefact", "1")
    _set(rows, header, row, "artefact_kind", "bubble")


@pytest.fixture
def one_run(tmp_path):
    from helpers.evaluation import make_runs

    runs = make_runs(tmp_path / "runs", archs=(ARCH,), train_variants=(CLEAN_TRAIN,), n_images=28)
    return runs, runs / ARCH / CLEAN_TRAIN / "fold0"


@pytest.mark.parametrize(
    "table, edit, message",
    [
        (
            "test_all",
            _drop_row_4,
            r"test_all\.csv: 27 rows, test_none\.csv has 28: no row for image ISIC_1000003",
        ),
        ("test_60", None, r"fold0: no prediction table for test_60"),
        (
            "test_bcc",
            lambda rows, h: _set(rows, h, 4, "y_true", str((int(rows[4][1]) + 1) % len(CLASSES))),
            r"test_bcc\.csv: row 6 \(ISIC_1000004\): y_true \d, test_none\.csv says \d",
        ),
        (
            "test_all",
            lambda rows, h: _set(rows, h, 5, "image_id", "ISIC_1000005x"),
            r"test_all\.csv: row 7 is image ISIC_1000005x, which test_none\.csv does not have",
        ),
        (
            "test_mel",
            _flip_a_non_mel_row,
            r"test_mel\.csv: row \d+ \(ISIC_\d+\): has_artefact 1, test_mel's definition says 0",
        ),
    ],
    ids=["missing-row", "missing-table", "y_true", "image_id", "flipped-has_artefact"],
)
def test_evaluate_refuses_each_damage_with_one_line(one_run, tmp_path, capsys, table, edit, message):
    runs, run = one_run
    csv = run / "predictions" / f"{table}.csv"
    if edit is None:
        csv.unlink()
    else:
        _rewrite(csv, edit)
    code, lines = _evaluate(capsys, runs, tmp_path / "out")
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("ham-artefacts evaluate: error: " + str(run)), lines[0]
    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "out").exists()


def test_a_lone_unfinished_run_with_one_table_is_refused(one_run, tmp_path, capsys):
    runs, run = one_run
    (run / "DONE").unlink()
    for csv in (run / "predictions").glob("*.csv"):
        if csv.stem != CLEAN_TEST:
            csv.unlink()
    code, lines = _evaluate(capsys, runs, tmp_path / "out")
    assert code == 2 and len(lines) == 1, lines
    assert f"none of its 1 run(s) is finished (no DONE: {ARCH}/{CLEAN_TRAIN}/fold0)" in lines[0]
    assert "--include-unfinished" in lines[0]
    code, lines = _evaluate(capsys, runs, tmp_path / "out", "--include-unfinished")
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].endswith(
        f"{run}: no prediction table for {', '.join(TEST_VARIANTS[1:])} (predict the run again)"
    )


def test_unfinished_runs_are_listed_and_skipped_or_included(tmp_path, capsys):
    from helpers.evaluation import make_runs

    runs = make_runs(tmp_path / "runs", archs=(ARCH,), train_variants=(CLEAN_TRAIN, "train_nv"), n_images=28)
    (runs / ARCH / "train_nv" / "fold0" / "DONE").unlink()  # its tables are complete, its DONE is not there
    code, lines = _evaluate(capsys, runs, tmp_path / "skipped")
    assert code == 0
    assert lines[0] == (
        f"skipping 1 unfinished run(s) (no DONE; --include-unfinished reads them): {ARCH}/train_nv/fold0"
    )
    info = json.loads((tmp_path / "skipped" / "results.json").read_text())
    assert info["train_variants"] == [CLEAN_TRAIN] and info["n_prediction_tables"] == len(TEST_VARIANTS)
    assert info["inputs_checked"] == {"include_unfinished": False, "data": None}
    metrics = pd.read_csv(tmp_path / "skipped" / "metrics.csv")
    assert set(metrics["train_variant"]) == {CLEAN_TRAIN}

    code, lines = _evaluate(capsys, runs, tmp_path / "all", "--include-unfinished")
    assert code == 0 and not any("skipping" in line for line in lines), lines
    info = json.loads((tmp_path / "all" / "results.json").read_text())
    assert info["train_variants"] == [CLEAN_TRAIN, "train_nv"]
    assert info["n_prediction_tables"] == 2 * len(TEST_VARIANTS)
    # the skipped run leaves the other's numbers as they were
    both = pd.read_csv(tmp_path / "all" / "metrics.csv")
    pd.testing.assert_frame_equal(both[both["train_variant"] == CLEAN_TRAIN].reset_index(drop=True), metrics)


# ---- --data: against the frozen files of a real (tiny) build ------------------------------------------


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory) -> Path:
    """The 13 test variant files of a tiny synthetic build (about 37 test images, 64x48)."""
    from generator.sources.synth import synthesize_ham10000
    from generator.variants.build import generate

    root = tmp_path_factory.mktemp("run_checks_data")
    source = synthesize_ham10000(
        root / "src", scale=0.01, test_scale=0.02, size=(64, 48), seed=0, progress=False
    )
    generate(source, root / "data", seed=0, workers=1, progress=False, variants=TEST_VARIANTS)
    return root / "data"


@pytest.fixture
def predicted(tiny_build, tmp_path, monkeypatch) -> tuple[Path, Path, Path]:
    """(data, runs, run): a copy of the build and one finished run predicted on it, with predict's writer."""
    from generator.variants.store import VariantReader
    from training.run.predict import prediction_table, write_table

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # open_checked's digest cache
    data = Path(shutil.copytree(tiny_build, tmp_path / "data"))
    run = tmp_path / "runs" / ARCH / CLEAN_TRAIN / "fold0"
    (run / "predictions").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for variant in TEST_VARIANTS:
        with VariantReader(data / f"{variant}.h5") as reader:
            scores = rng.dirichlet(np.ones(len(CLASSES)), len(reader))
            table = prediction_table(reader, np.arange(len(reader)), scores, scores.argmax(1))
        write_table(table, run / "predictions" / f"{variant}.csv")
    (run / "config.json").write_text(json.dumps({"arch": ARCH, "train_variant": CLEAN_TRAIN, "fold": 0}))
    (run / "DONE").write_text("{}\n")
    return data, tmp_path / "runs", run


def _swap_within_test_80(run: Path) -> None:
    """Move test_80's artefact from one image to another of its class outside test_60 and test_80:
    per-class counts and nesting stand, so only the data can tell."""
    tables = {
        v: pd.read_csv(run / "predictions" / f"{v}.csv", dtype=str, keep_default_na=False)
        for v in ("test_60", "test_80", ALL_TEST)
    }
    t60, t80 = (tables[v]["has_artefact"] == "1" for v in ("test_60", "test_80"))
    y = tables["test_80"]["y_true"]
    cls = next(c for c in y.unique() if (t80 & ~t60 & (y == c)).any() and (~t80 & (y == c)).any())
    give, take = int(np.flatnonzero(t80 & ~t60 & (y == cls))[0]), int(np.flatnonzero(~t80 & (y == cls))[0])
    table = tables["test_80"]
    table.loc[give, ["has_artefact", "artefact_kind"]] = ["0", ""]
    table.loc[take, ["has_artefact", "artefact_kind"]] = ["1", tables[ALL_TEST].loc[take, "artefact_kind"]]
    table.to_csv(run / "predictions" / "test_80.csv", index=False)


def _rename_one_image_everywhere(run: Path) -> None:
    for csv in (run / "predictions").glob("*.csv"):
        _rewrite(csv, lambda rows, h: _set(rows, h, 0, "image_id", rows[0][0] + "0"))  # stays first in order


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            _swap_within_test_80,
            r"test_80\.csv: row \d+ \(ISIC_\d+\): has_artefact (0, .*data/test_80\.h5 says 1|1, .*data/test_80\.h5 says 0)$",
        ),
        (
            _rename_one_image_everywhere,
            r"test_none\.csv: row 2 is image ISIC_\d+0, which .*data/test_none\.h5 does not have$",
        ),
    ],
    ids=["has_artefact-of-a-percentage", "image_id-in-every-table"],
)
def test_data_catches_what_the_tables_alone_cannot(predicted, tmp_path, capsys, damage, message):
    data, runs, run = predicted
    code, lines = _evaluate(capsys, runs, tmp_path / "good", "--data", str(data))
    assert code == 0, lines
    info = json.loads((tmp_path / "good" / "results.json").read_text())
    assert info["inputs_checked"] == {"include_unfinished": False, "data": str(data)}
    damage(run)
    code, lines = _evaluate(capsys, runs, tmp_path / "without")
    assert code == 0, lines  # the tables agree with each other and with the variants' definitions
    code, lines = _evaluate(capsys, runs, tmp_path / "with", "--data", str(data))
    assert code == 2 and len(lines) == 1, lines
    assert re.search(message, lines[0]) and str(run) in lines[0], lines[0]
    assert not (tmp_path / "with").exists()


def test_data_without_manifest_or_with_another_build_is_one_line(predicted, tmp_path, capsys):
    data, runs, _ = predicted
    code, lines = _evaluate(capsys, runs, tmp_path / "out", "--data", str(tmp_path))
    assert code == 2 and len(lines) == 1 and f"{tmp_path / MANIFEST_NAME}: no manifest" in lines[0], lines
    with open(data / "test_60.h5", "r+b") as f:  # one byte of another build
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 0xFF]))
    code, lines = _evaluate(capsys, runs, tmp_path / "out", "--data", str(data))
    assert code == 2 and len(lines) == 1 and "test_60.h5: SHA-256" in lines[0], lines


def test_lesion_ids_must_agree_across_the_data_files(predicted, tmp_path):
    """The tables carry no lesion ids: what --data checks of them is that the files agree with test_none's."""
    import h5py

    from generator.variants.manifest import sha256_file

    data, runs, _ = predicted
    path = data / f"{ALL_TEST}.h5"
    with h5py.File(path, "r+") as f:  # a build that mislabels one lesion, its manifest written to match
        ids = f["lesion_ids"].asstr()[:]
        ids[3] = "HAM_9999999"
        del f["lesion_ids"]
        f.create_dataset("lesion_ids", data=ids.astype(object), dtype=h5py.string_dtype())
    manifest = json.loads((data / MANIFEST_NAME).read_text())
    entry = next(e for e in manifest["files"] if e["variant"] == ALL_TEST)
    entry["sha256"], entry["bytes"] = sha256_file(path), path.stat().st_size
    (data / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(
        UserError, match=r"test_all\.h5: row 3: image ISIC_\d+ has lesion HAM_9999999, test_none\.h5 says"
    ):
        run_checks.frozen_columns(data)
