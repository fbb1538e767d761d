"""Each registry is the one place a fact lives: adding an entry there shows up everywhere it is listed.

Every check registers a new entry in a fresh interpreter (so no module-level list built at import
time can hide from it), then reads the lists and CLI output that must derive from the registry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_python(code: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_adding_a_variant_is_one_registry_entry():
    out = run_python("""
        import contextlib, io, json
        from generator.variants import VARIANTS, VariantSpec
        VARIANTS["train_half"] = VariantSpec("train_half", "train", "an artefact on half the training images",
                                             "percent", percent=50)
        VARIANTS["test_90"] = VariantSpec("test_90", "test", "an artefact on 90% of the test images",
                                          "percent", percent=90)
        from generator.cli import main
        from generator.distribution.info import bare_info
        from training.evaluation.predictions import TEST_VARIANTS, TRAINING_CONDITIONS
        from training.export.results import TRAINING_CONDITIONS as TABLE_TRAIN_VARIANTS
        listing = io.StringIO()
        with contextlib.redirect_stdout(listing):
            main(["list"])
        print(json.dumps({"list": listing.getvalue(), "info": list(bare_info()), "test": TEST_VARIANTS,
                          "train": TRAINING_CONDITIONS, "tables": TABLE_TRAIN_VARIANTS}))
    """)
    assert out["test"][-1] == "test_90" and "test_90" in out["info"]
    # each training variant is followed by its augmented condition (training.data.conditions)
    assert (
        out["train"][-2:] == out["tables"][-2:] == ["train_half", "train_half+aug"]
        and "train_half" in out["info"]
    )
    listed = [line.split()[0] for line in out["list"].splitlines()[1:]]
    assert "test_90" in listed and "train_half" in listed
    assert "an artefact on 90% of the test images" in out["list"]


def test_adding_an_architecture_is_one_registry_entry():
    out = run_python("""
        import json
        import sys
        from training.models import ArchSpec, MODELS, register

        @register(ArchSpec("tinynet", "TinyNet", detector=False, needs_masks=False, mask_head=False,
                           channels_last=False))
        def build_tinynet(num_classes=7, image_size=32, weights=None, pretrained_layout=None, detector_options=None):
            raise NotImplementedError

        from training.cli import register as register_cli
        import argparse
        parser = argparse.ArgumentParser()
        register_cli(parser.add_subparsers())
        parsed = parser.parse_args(["train", "--data", "d", "--out", "o", "--arch", "tinynet"])
        from training.export.charts import arch_label
        from training.export.results import ARCH_ORDER
        from training.run.sweep import ARCHS
        from training.models import is_detector, uses_channels_last
        print(json.dumps({"torch": "torch" in sys.modules, "cli": parsed.arch, "models": list(MODELS), "sweep": ARCHS, "site": ARCH_ORDER, "label": arch_label("tinynet"),
                          "detector": is_detector("tinynet"), "channels_last": uses_channels_last("tinynet", "cuda"),
                          "resnet_channels_last": uses_channels_last("resnet34", "cuda"),
                          "cpu_channels_last": uses_channels_last("resnet34", "cpu")}))
    """)
    assert out["sweep"][-1] == out["site"][-1] == out["models"][-1] == out["cli"] == "tinynet"
    assert not out["torch"], "the registry, the sweep and the site's tables must not need torch"
    assert out["label"] == "TinyNet" and out["detector"] is False and out["channels_last"] is False
    assert out["resnet_channels_last"] is True and out["cpu_channels_last"] is False


def test_a_model_factory_is_registered_with_its_spec():
    from training.models import ARCHITECTURES, MODELS, register

    with pytest.raises(TypeError, match="ArchSpec"):
        register("tinynet")
    assert list(MODELS) == list(ARCHITECTURES)  # every registered factory has its spec, in one order


def test_adding_a_kind_is_one_registry_entry(monkeypatch):
    from generator.artefacts import kinds
    from generator.variants.labels import bissoto_column

    monkeypatch.setattr(kinds, "KINDS", dict(kinds.KINDS))
    monkeypatch.setattr(kinds, "FAMILIES", dict(kinds.FAMILIES))
    kinds.register_kind(
        kinds.KindSpec(
            name="plaster",
            family="patches",
            description="a sticking plaster",
            placement="anywhere",
            meta_class="patches",
            bissoto_column="patches",
        )
    )
    assert bissoto_column("plaster") == "patches"
    assert "plaster" in kinds.FAMILIES["patches"]
    assert "plaster" in kinds.family_kinds(["patches"])


def test_class_count_follows_the_class_list():
    from generator import CLASSES, NUM_CLASSES
    from training.evaluation.predictions import SCORE_COLUMNS

    assert NUM_CLASSES == len(CLASSES) == len(SCORE_COLUMNS)
