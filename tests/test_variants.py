"""The variant registry and its selection rules (no files written)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator import CLASSES
from generator.errors import UserError
from generator.variants import VARIANTS, list_variants, resolve_variants


def test_registry_has_the_22_named_variants_in_order():
    train = ["train_none", "train_all"] + [f"train_{c}" for c in CLASSES]
    test = (
        ["test_none", "test_all"]
        + [f"test_{c}" for c in CLASSES]
        + ["test_20", "test_40", "test_60", "test_80"]
    )
    assert list_variants("train") == train
    assert list_variants("test") == test
    assert list_variants() == train + test
    assert all(VARIANTS[n].split == "train" for n in train)


def test_resolve_variants_keeps_registry_order_and_rejects_unknown():
    assert [s.name for s in resolve_variants(["test_all", "train_none,test_20"])] == [
        "train_none",
        "test_all",
        "test_20",
    ]
    assert len(resolve_variants(None)) == 22
    with pytest.raises(UserError, match="test_99"):
        resolve_variants(["test_99"])
    with pytest.raises(UserError):
        list_variants("valid")


label_lists = st.lists(st.integers(0, len(CLASSES) - 1), min_size=1, max_size=120)


@settings(max_examples=60, deadline=None)
@given(labels=label_lists, seed=st.integers(0, 2**31))
def test_percent_subsets_are_nested_and_stratified_with_exact_counts(labels, seed):
    labels = np.array(labels)
    ids = [f"ISIC_{1000000 + 7 * i:07d}" for i in range(len(labels))]
    previous = np.zeros(len(labels), bool)
    for pct in (20, 40, 60, 80):
        chosen = VARIANTS[f"test_{pct}"].selection(labels, ids, seed)
        assert not (previous & ~chosen).any(), "not nested"
        for c in np.unique(labels):
            n_c = int((labels == c).sum())
            expected = int(np.floor(pct / 100 * n_c + 0.5 + 1e-9))
            assert chosen[labels == c].sum() == expected
        previous = chosen


def test_percent_subset_of_an_image_depends_on_seed_and_id_not_on_row_order():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 200)
    ids = [f"ISIC_{2000000 + i:07d}" for i in range(200)]
    spec = VARIANTS["test_40"]
    chosen = dict(zip(ids, spec.selection(labels, ids, 5), strict=True))
    perm = rng.permutation(200)
    chosen_perm = spec.selection(labels[perm], [ids[i] for i in perm], 5)
    assert all(chosen[ids[i]] == c for i, c in zip(perm, chosen_perm, strict=True))
    assert not np.array_equal(spec.selection(labels, ids, 5), spec.selection(labels, ids, 6))


def test_class_variants_select_exactly_their_class():
    labels = np.array([0, 1, 2, 3, 4, 5, 6, 5, 5, 1])
    ids = [f"ISIC_{i:07d}" for i in range(len(labels))]
    for label, cls in enumerate(CLASSES):
        for split in ("train", "test"):
            assert np.array_equal(VARIANTS[f"{split}_{cls}"].selection(labels, ids, 0), labels == label)
    assert not VARIANTS["test_none"].selection(labels, ids, 0).any()
    assert VARIANTS["train_all"].selection(labels, ids, 0).all()
