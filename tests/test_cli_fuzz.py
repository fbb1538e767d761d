"""The CLI's one rule (issue 13): every subcommand, fed malformed arguments or malformed files (JSON
nested 100,000 deep, 5,000-digit integers, binary garbage, empty files, folders where files belong)
or run without its optional extra, exits 2 with exactly one line on stderr, no traceback, and leaves
nothing new behind.

Commands run in-process through ``generator.cli.main`` (one interpreter, so the whole matrix takes
seconds); missing extras are simulated in one subprocess with an import hook that hides them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generator.cli import main
from generator.variants import ALL_TEST, CLEAN_TEST, CLEAN_TRAIN
from generator.variants.manifest import FORMAT, MANIFEST_NAME
from training.models import list_architectures

REPO = Path(__file__).resolve().parents[1]
CLASSIFIER = list_architectures()[0]  # the registry lists the classifier first

# name -> what a malformed input file holds (None: a folder where the file belongs)
BAD_CONTENT = {
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "huge": b'{"format": "' + FORMAT.encode() + b'", "seed": ' + b"9" * 5000 + b', "files": []}',
    "garbage": bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
    "empty": b"",
    "folder": None,
}


PROGRESS_BAR = re.compile(r"^[^:]{1,80}: +\d{1,3}%\|.*\|")


def _plant(path: Path, kind: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if BAD_CONTENT[kind] is None:
        path.mkdir()
    else:
        path.write_bytes(BAD_CONTENT[kind])
    return path


def _snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): (p.stat().st_size if p.is_file() else -1) for p in root.rglob("*")}


def _run(argv: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def _assert_one_line_error(code: int, err: str, argv, expected_code: int = 2) -> str:
    shown = " ".join(map(str, argv))[:300]
    assert "Traceback" not in err, f"{shown}\n{err}"
    # what a terminal shows: a carriage return rewinds the line (progress bars redraw and clear
    # themselves that way), so an error printed after an open bar would share the bar's line
    lines = [v for line in err.split("\n") if (v := line.rsplit("\r", 1)[-1].strip())]
    # a progress bar a failing stage leaves standing is not part of the message
    lines = [line for line in lines if not PROGRESS_BAR.match(line)]
    assert len(lines) == 1, f"{shown}: {len(lines)} stderr lines\n{err[:2000]}"
    assert lines[0].startswith("ham-artefacts"), f"{shown}: {lines[0]}"
    assert code == expected_code, f"{shown}: exit {code}: {lines[0]}"
    return lines[0]


@pytest.fixture()
def work(tmp_path, monkeypatch):
    """A workspace with one good image and mask; the cwd, so that relative defaults land here too."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(tmp_path / "good.png")
    mask = np.zeros((48, 64), np.uint8)
    mask[10:30, 20:40] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return tmp_path


# Each case: (bad file path relative to the workspace, argv using {bad} and {w}). The bad path names
# the file the command reads (a manifest, a template bank's meta.json, a run's config.json...).
FILE_CASES = [
    ("in.png", ["insert", "--image", "{bad}", "--kind", "bubble", "--out", "{w}/o.png"]),
    (
        "m.png",
        ["insert", "--image", "{w}/good.png", "--mask", "{bad}", "--kind", "bubble", "--out", "{w}/o.png"],
    ),
    (
        "bank/meta.json",
        [
            "insert",
            "--image",
            "{w}/good.png",
            "--kind",
            "bubble",
            "--templates",
            "{w}/bank",
            "--out",
            "{w}/o.png",
        ],
    ),
    ("bank/meta.json", ["templates", "list", "--templates", "{w}/bank"]),
    ("bank/meta.json", ["templates", "gallery", "--templates", "{w}/bank", "--out", "{w}/g.png"]),
    ("bank/meta.json", ["templates", "examples", "--templates", "{w}/bank", "--out", "{w}/ex"]),
    (
        "ext/meta.json",
        [
            "templates",
            "extract",
            "--kind",
            "bubble",
            "--out",
            "{w}/ext",
            "--image",
            "{w}/good.png",
            "--artefact-mask",
            "{w}/mask.png",
        ],
    ),
    (
        "am.png",
        [
            "templates",
            "extract",
            "--kind",
            "bubble",
            "--out",
            "{w}/newbank",
            "--image",
            "{w}/good.png",
            "--artefact-mask",
            "{bad}",
        ],
    ),
    ("src/HAM10000_metadata.csv", ["generate", "--source", "{w}/src", "--out", "{w}/gen"]),
    ("bank/meta.json", ["generate", "--source", "{w}/src", "--out", "{w}/gen", "--templates", "{w}/bank"]),
    ("man.json", ["fetch", "--manifest", "{bad}", "--out", "{w}/dl"]),
    (f"mdir/{MANIFEST_NAME}", ["fetch", "--manifest", "{w}/mdir", "--out", "{w}/dl"]),
    ("man.json", ["list", "--manifest", "{bad}"]),
    ("man.json", ["info", ALL_TEST, "--manifest", "{bad}"]),
    (
        f"data/{MANIFEST_NAME}",
        ["publish", "--data", "{w}/data", "--out", "{w}/pub", "--base-url", "http://127.0.0.1:9/"],
    ),
    (
        f"data/{CLEAN_TRAIN}.h5",
        [
            "train",
            "--data",
            "{w}/data",
            "--out",
            "{w}/runs",
            "--arch",
            CLASSIFIER,
            "--profile",
            "tiny",
            "--quiet",
        ],
    ),
    ("run/config.json", ["predict", "--run", "{w}/run", "--quiet"]),
    ("runs/jobs.jsonl", ["sweep", "run", "--out", "{w}/runs", "--all", "--quiet"]),
    (
        f"runs/{CLASSIFIER}/{CLEAN_TRAIN}/fold0/predictions/{CLEAN_TEST}.csv",
        ["evaluate", "--runs", "{w}/runs", "--out", "{w}/res"],
    ),
    (
        f"runs/{CLASSIFIER}/{CLEAN_TRAIN}/fold0/config.json",
        ["gradcam", "--runs", "{w}/runs", "--data", "{w}/data", "--out", "{w}/res"],
    ),
    (
        "results/metrics_summary.csv",
        ["export", "--results", "{w}/results", "--data", "{w}/data", "--site-dir", "{w}/site"],
    ),
]


def _needs(argv: list[str]) -> None:
    command = argv[0]
    extras = {
        "train": ("torch", "torchvision", "sklearn"),
        "predict": ("torch", "torchvision"),
        "sweep": ("torch", "torchvision", "sklearn"),
        "evaluate": ("sklearn", "statsmodels"),
        "gradcam": ("torch", "pytorch_grad_cam"),
        "export": ("yaml", "altair"),
    }.get(command, ())
    for module in extras:
        pytest.importorskip(module, reason=f"`{command}` needs {module} (an optional extra)")


def _companions(work: Path, bad_rel: str) -> None:
    """Good files a case needs beside its bad one, so that the bad file is what gets read."""
    bad = Path(bad_rel)
    if bad.name == "best.pt" or bad_rel == "run/config.json":
        (work / "run").mkdir(exist_ok=True)
        (work / "run" / "best.pt").write_bytes(b"not a checkpoint")
    if bad_rel.startswith(f"runs/{CLASSIFIER}/"):
        fold = work / "runs" / CLASSIFIER / CLEAN_TRAIN / "fold0"
        (fold / "predictions").mkdir(parents=True, exist_ok=True)
        (fold / "best.pt").write_bytes(b"not a checkpoint")
        (fold / "DONE").write_text("{}\n")  # finished: evaluate reads its tables instead of skipping it
        (work / "data").mkdir(exist_ok=True)
    if bad_rel.startswith("results/"):
        (work / "data").mkdir(exist_ok=True)
    if bad_rel.startswith("src/"):
        (work / "src").mkdir(exist_ok=True)


@pytest.mark.parametrize("kind", sorted(BAD_CONTENT))
@pytest.mark.parametrize(
    ("bad_rel", "template"), FILE_CASES, ids=[f"{t[0]}-{'/'.join(t[1][:2])}" for t in FILE_CASES]
)
def test_malformed_files_give_one_line_and_exit_2(work, capsys, kind, bad_rel, template):
    _needs(template)
    _companions(work, bad_rel)
    bad = _plant(work / bad_rel, kind)
    argv = [a.replace("{bad}", str(bad)).replace("{w}", str(work)) for a in template]
    before = _snapshot(work)
    code, err = _run(argv, capsys)
    _assert_one_line_error(code, err, argv)
    assert _snapshot(work) == before, f"{argv}: left files behind"


MALFORMED_ARGS = [
    ["insert", "--image", "{w}/good.png", "--kind", "no_such_kind", "--out", "{w}/o.png"],
    ["insert", "--image", "{w}/good.png", "--kind", "bubble", "--seed", "x", "--out", "{w}/o.png"],
    ["insert", "--image", "{w}/good.png", "--kind", "bubble", "--seed", "9" * 5000, "--out", "{w}/o.png"],
    ["insert", "--image", "{w}/nowhere.png", "--kind", "bubble", "--out", "{w}/o.png"],
    ["insert", "--image", "{w}/good.png", "--kind", "bubble", "--out", "{w}"],
    ["templates", "nonsense"],
    ["templates", "extract", "--kind", "bubble", "--out", "{w}/b"],
    ["synth-ham10000", "--out", "{w}/good.png"],
    ["synth-ham10000", "--out", "{w}/s", "--scale", "-1"],
    ["synth-ham10000", "--out", "{w}/s", "--size", "0x0"],
    ["generate", "--source", "{w}/nowhere", "--out", "{w}/g"],
    ["generate", "--source", "{w}", "--out", "{w}/g", "--shard", "3/2"],
    ["generate", "--source", "{w}", "--out", "{w}/g", "--size", "axb"],
    ["generate", "--source", "{w}", "--out", "{w}/g", "--workers", "0"],
    ["generate", "--source", "{w}", "--out", "{w}/good.png"],
    ["verify", "{w}/nowhere"],
    ["verify", "{w}/good.png"],
    ["fetch", "--manifest", "http://[127.0.0.1/ok/manifest.json", "--out", "{w}/dl"],
    ["fetch", "--manifest", "http://127.0.0.1:99999/manifest.json", "--out", "{w}/dl"],
    ["fetch", "--manifest", "ftp://example.invalid/manifest.json", "--out", "{w}/dl"],
    ["fetch", "--manifest", "{w}/nowhere.json", "--out", "{w}/dl"],
    ["fetch", "--manifest", "{w}/good.png", "--out", "{w}/dl", "--workers", "0"],
    ["fetch", "--manifest", "{w}/good.png", "--out", "{w}/dl", "--timeout", "-1"],
    ["fetch", "--manifest", "{w}/good.png", "--out", "{w}/dl", "--retries", "many"],
    ["list", "--manifest", "http://[::1"],
    ["info", "no_such_variant"],
    ["info", "\x1b[31m" + "v" * 10_000],
    ["publish", "--data", "{w}/nowhere", "--out", "{w}/p", "--base-url", "http://x/"],
    ["publish", "--data", "{w}", "--out", "{w}/p", "--base-url", "http://[bad/"],
    ["publish", "--data", "{w}", "--out", "{w}/p", "--base-url", "http://127.0.0.1:99999/"],
    ["train", "--data", "{w}/nowhere", "--out", "{w}/runs", "--arch", CLASSIFIER],
    ["train", "--data", "{w}", "--out", "{w}/runs", "--arch", "vgg"],
    ["train", "--data", "{w}", "--out", "{w}/runs", "--arch", CLASSIFIER, "--epochs", "0"],
    ["predict", "--run", "{w}/nowhere"],
    ["sweep", "plan", "--data", "{w}/nowhere", "--out", "{w}/runs"],
    ["sweep", "plan", "--data", "{w}", "--out", "{w}/runs", "--folds", "7"],
    ["sweep", "run", "--index", "0"],
    ["sweep", "run", "--jobs", "{w}/nowhere.jsonl", "--index", "0"],
    ["evaluate", "--runs", "{w}/nowhere", "--out", "{w}/res"],
    ["evaluate", "--runs", "{w}", "--out", "{w}/res", "--bootstrap", "-5"],
    ["gradcam", "--runs", "{w}/nowhere", "--data", "{w}", "--out", "{w}/res"],
    ["export", "--results", "{w}/nowhere", "--data", "{w}", "--site-dir", "{w}/site"],
    ["no-such-command"],
    ["--no-such-flag"],
]


@pytest.mark.parametrize("template", MALFORMED_ARGS, ids=[" ".join(t[:3])[:60] for t in MALFORMED_ARGS])
def test_malformed_arguments_give_one_line_and_exit_2(work, capsys, template):
    _needs(template)
    argv = [a.replace("{w}", str(work)) for a in template]
    before = _snapshot(work)
    code, err = _run(argv, capsys)
    line = _assert_one_line_error(code, err, argv)
    assert "\x1b" not in line and len(line) < 2500, line
    assert _snapshot(work) == before, f"{argv}: left files behind"


def test_debug_flag_shows_the_traceback(work, capsys):
    argv = ["fetch", "--manifest", "http://[127.0.0.1/ok/", "--out", str(work / "dl"), "--debug"]
    code, err = _run(argv, capsys)
    assert (
        code == 2
        and "Traceback" in err
        and err.strip().splitlines()[-1].startswith("ham-artefacts fetch: error")
    )


def test_verify_reports_a_malformed_manifest_as_a_problem(work, capsys):
    """verify's verdict (exit 1) names manifest.json; the malformed file never raises."""
    for kind in BAD_CONTENT:
        folder = work / f"v_{kind}"
        _plant(folder / MANIFEST_NAME, kind)
        code, err = _run(["verify", folder], capsys)
        assert code == 1 and "Traceback" not in err and MANIFEST_NAME in err, err


# Missing extras: hide the optional modules behind an import hook in a fresh interpreter and run
# every command that needs one; each must name the extra to install.
_HIDE_AND_RUN = r"""
import io, json, sys
HIDDEN = set(sys.argv[1].split(","))

class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Hide())
from generator.cli import main
results = []
for argv in json.loads(sys.argv[2]):
    err = io.StringIO()
    sys.stderr, saved = err, sys.stderr
    try:
        code = main(argv)
    finally:
        sys.stderr = saved
    results.append([code, err.getvalue()])
print(json.dumps(results))
"""

EXTRA_CASES = [
    (["train", "--data", "{w}", "--out", "{w}/runs", "--arch", CLASSIFIER], "train"),
    (["predict", "--run", "{w}/run"], "train"),
    (["sweep", "plan", "--data", "{w}", "--out", "{w}/runs"], "train"),
    (["gradcam", "--runs", "{w}", "--data", "{w}", "--out", "{w}/res"], "train"),
    (["export", "--results", "{w}", "--data", "{w}", "--site-dir", "{w}/site"], "site"),
]


def test_missing_extras_name_the_extra_to_install(tmp_path):
    hidden = "torch,torchvision,sklearn,statsmodels,pytorch_grad_cam,mkdocs,material,altair,yaml,vl_convert"
    argvs = [[a.replace("{w}", str(tmp_path)) for a in argv] for argv, _ in EXTRA_CASES]
    before = _snapshot(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", _HIDE_AND_RUN, hidden, json.dumps(argvs)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for (argv, extra), (code, err) in zip(EXTRA_CASES, json.loads(result.stdout), strict=True):
        line = _assert_one_line_error(code, err, argv)
        assert f"pip install 'ham-artefacts[{extra}]'" in line, line
    assert _snapshot(tmp_path) == before


def test_an_error_after_a_progress_bar_starts_on_its_own_line(work, capsys, monkeypatch):
    """A stage failing with its bar still open: the bar is closed first, so the error is not glued
    to the end of the bar's line."""
    import generator.cli_data
    from generator.errors import UserError

    def failing_generate(args):
        from tqdm import tqdm

        bar = tqdm(total=10, desc="images", file=sys.stderr)
        bar.update(3)
        raise UserError(f"{args.source}: image 4 is unreadable")

    monkeypatch.setattr(generator.cli_data, "run_generate", failing_generate)
    argv = ["generate", "--source", str(work), "--out", str(work / "g")]
    code, err = _run(argv, capsys)
    line = _assert_one_line_error(code, err, argv)
    assert line.startswith("ham-artefacts generate: error:") and err.endswith("image 4 is unreadable\n")
