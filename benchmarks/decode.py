"""Decode throughput of stored rows with the documented h5py + Pillow recipe (one core).

    python benchmarks/decode.py                    # builds a small 600x450 data set first
    python benchmarks/decode.py --data DIR         # an existing generate output folder

For the clean file (test_none: source JPEG bytes) and the fully artefacted one (test_all:
lossless PNG) it times, per row, the README recipe::

    image = np.asarray(Image.open(io.BytesIO(f["images"][i])))

plus the lesion and artefact masks, and reports rows per CPU-second (rows/s/core; CPU time, so
the figure holds on a busy machine). Baseline in the same run: decoding the source JPEG files
from disk with Pillow. Target (issue 3): >= 200 rows/s/core at 600x450.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TARGET = 200.0


def decode_rows(path: Path, limit: int, masks: bool) -> tuple[float, int, tuple]:
    """Rows per CPU-second for the first ``limit`` rows of one variant file."""
    import h5py
    from PIL import Image

    with h5py.File(path, "r") as f:
        n = min(limit, len(f["labels"]))
        images, lesions, artefacts = f["images"], f["lesion_masks"], f["artefact_masks"]
        start = time.process_time()
        for i in range(n):
            image = np.asarray(Image.open(io.BytesIO(images[i])))
            if masks:
                np.asarray(Image.open(io.BytesIO(lesions[i])))
                np.asarray(Image.open(io.BytesIO(artefacts[i])))
        seconds = time.process_time() - start
    return n / seconds, n, image.shape


def decode_source_files(source: Path, limit: int) -> float:
    """Baseline: rows per CPU-second decoding the source JPEG files from disk."""
    from PIL import Image

    paths = sorted((source / "ISIC2018_Task3_Test_Images").glob("*.jpg"))[:limit]
    start = time.process_time()
    for p in paths:
        np.asarray(Image.open(p))
    return len(paths) / (time.process_time() - start)


def main(argv=None) -> int:
    from generator.variants import ALL_TEST, CLEAN_TEST

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="generate output (default: build one)")
    parser.add_argument("--source", type=Path, default=None, help="its source folder, for the baseline")
    parser.add_argument(
        "--scale", type=float, default=0.05, help="scale of the data set built when no --data"
    )
    parser.add_argument("--rows", type=int, default=400, help="rows decoded per file")
    args = parser.parse_args(argv)

    work = None
    if args.data is None:
        work = Path(tempfile.mkdtemp(prefix="bench-decode-"))
        args.source, args.data = work / "src", work / "data"
        py = [sys.executable, "-m", "generator"]
        subprocess.run(
            py
            + [
                "synth-ham10000",
                "--out",
                str(args.source),
                "--scale",
                str(args.scale),
                "--seed",
                "0",
                "--workers",
                "2",
                "--quiet",
            ],
            check=True,
            cwd=REPO,
        )
        subprocess.run(
            py
            + [
                "generate",
                "--source",
                str(args.source),
                "--out",
                str(args.data),
                "--workers",
                "2",
                "--variants",
                CLEAN_TEST,
                ALL_TEST,
                "--quiet",
            ],
            check=True,
            cwd=REPO,
        )
    try:
        figures = {}
        for name in (CLEAN_TEST, ALL_TEST):
            rate, n, shape = decode_rows(args.data / f"{name}.h5", args.rows, masks=False)
            rate_masks, _, _ = decode_rows(args.data / f"{name}.h5", args.rows, masks=True)
            figures[name] = {
                "rows": n,
                "shape": list(shape),
                "rows_per_s_per_core": round(rate, 1),
                "with_masks_rows_per_s_per_core": round(rate_masks, 1),
            }
        if args.source is not None:
            figures["baseline_source_jpeg_files"] = {
                "rows_per_s_per_core": round(decode_source_files(args.source, args.rows), 1)
            }
        print(json.dumps(figures, indent=2))
        base = figures.get("baseline_source_jpeg_files", {}).get("rows_per_s_per_core")
        for name in (CLEAN_TEST, ALL_TEST):
            f = figures[name]
            ratio = f" ({f['rows_per_s_per_core'] / base:.2f}x the source-JPEG baseline)" if base else ""
            ok = "meets" if f["rows_per_s_per_core"] >= TARGET else "MISSES"
            print(
                f"{name} {f['shape'][1]}x{f['shape'][0]}: {f['rows_per_s_per_core']} rows/s/core{ratio}, "
                f"{f['with_masks_rows_per_s_per_core']} with both masks; {ok} the {TARGET:.0f} target"
            )
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
