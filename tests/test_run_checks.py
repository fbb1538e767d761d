"""evaluate's input checks (training.evaluation.run_checks): every way a table can silently move a metric."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from generator import CLASSES
from generator.errors import UserError
from generator.variants import ALL_TEST, CLEAN_TEST, VARIANTS, list_variants
from training.evaluation import run_checks


def consistent_tables(n: int = 70, seed: int = 0) -> dict[str, pd.DataFrame]:
    """One run's 13 tables, each as the variant defines it (the registry's own selection rule)."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"ISIC_{i:07d}" for i in range(n)], dtype=object)
    y_true = np.arange(n) % len(CLASSES)
    tables = {}
    for variant in list_variants("test"):
        has = VARIANTS[variant].selection(y_true, list(ids), seed).astype(np.int64)
        scores = rng.dirichlet(np.ones(len(CLASSES)), n)
        tables[variant] = pd.DataFrame(
            {"image_id": ids.copy(), "y_true": y_true.copy(), "y_pred": scores.argmax(1), "has_artefact": has}
        )
    return tables


def test_consistent_tables_pass():
    run_checks.check_run("runs/r", consistent_tables())


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda t: t.pop("test_60"), r"runs/r: no prediction table for test_60"),
        (
            lambda t: t.__setitem__(ALL_TEST, t[ALL_TEST].drop(index=3)),
            r"test_all\.csv: 69 rows, test_none\.csv has 70",
        ),
        (
            lambda t: t[ALL_TEST].loc.__setitem__((5, "image_id"), "ISIC_9999999"),
            r"test_all\.csv: row 7 is image ISIC_9999999",
        ),
        (
            lambda t: t["test_bcc"].loc.__setitem__((4, "y_true"), 0),
            r"test_bcc\.csv: row 6 \(ISIC_0000004\): y_true 0",
        ),
        (
            lambda t: t["test_mel"].loc.__setitem__((3, "has_artefact"), 1),
            r"test_mel\.csv: row 5 .*has_artefact 1, test_mel defines 0",
        ),
        (
            lambda t: t[CLEAN_TEST].loc.__setitem__((0, "has_artefact"), 1),
            r"test_none\.csv: row 2 .*has_artefact 1",
        ),
        (
            lambda t: t["test_40"].loc.__setitem__(
                (0, "has_artefact"), 1 - t["test_40"].loc[0, "has_artefact"]
            ),
            r"test_40\.csv: \d+ akiec images have an artefact, test_40 puts one on \d+",
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
    with pytest.raises(
        UserError, match=r"test_40\.csv: row \d+ .*has no artefact, but it has one in the smaller"
    ):
        run_checks.check_run("runs/r", tables)


def test_tables_are_checked_against_the_frozen_files():
    tables = consistent_tables()
    data = {
        v: {c: t[c].to_numpy() for c in ("image_id", "y_true", "has_artefact")} for v, t in tables.items()
    }
    run_checks.check_run("runs/r", tables, data)
    data["test_all"]["y_true"] = np.roll(data["test_all"]["y_true"], 1)
    tables_all_labels = tables  # the tables agree with each other, not with the data
    with pytest.raises(UserError, match=r"test_all\.csv: row 2: y_true 0, the data's file says 6"):
        run_checks.check_run("runs/r", tables_all_labels, data)


def test_unfinished_runs_are_set_apart_unless_included(tmp_path):
    done, open_ = tmp_path / "a", tmp_path / "b"
    done.mkdir(), open_.mkdir()
    (done / "DONE").write_text("")
    runs = [SimpleNamespace(path=done), SimpleNamespace(path=open_)]
    assert run_checks.split_finished(runs) == ([runs[0]], [runs[1]])
    assert run_checks.split_finished(runs, include_unfinished=True) == (runs, [])
