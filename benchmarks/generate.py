"""Benchmark of `ham-artefacts generate`: the full build of all 22 variant files.

    python benchmarks/generate.py                 # full scale: 10,015 + 1,511 images at 600x450
    python benchmarks/generate.py --scale 0.1     # a tenth, figures extrapolated linearly

Steps: synth-ham10000 at --scale (not timed against the target), then `generate` of all 22
variants with --workers, run as a subprocess whose process tree is sampled for memory. Prints
seconds, rows/s, bytes per row, peak RSS (largest process and whole tree) and CPU seconds.

Baseline, measured in the same run: the naive approach that treats every variant separately,
decoding, rendering and encoding each row of each variant again (no row cache), on a subsample
of images, with the same encoders; its per-row CPU cost times the build's row count, divided by the worker count (perfect
parallel scaling granted), gives the naive build time the printed ratio compares against.

Targets (issue 3): <= 600 s wall for generate at full scale, <= 35 GB for the 22 files, peak RSS
< 4 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS, TARGET_BYTES, TARGET_RSS = 600.0, 35e9, 4 * 2**30


def _tree_rss(root_pid: int) -> tuple[int, int]:
    """(sum, max) resident bytes over ``root_pid`` and its descendants, from /proc."""
    parents, rss = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    values = [rss.get(pid, 0) for pid in tree]
    return sum(values), max(values, default=0)


def run_measured(cmd: list[str]) -> dict:
    """Run ``cmd``; wall seconds, CPU seconds of the tree and sampled peak RSS (sum and max)."""
    before = os.times()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO)
    peak = {"sum": 0, "max": 0}

    def sample():
        while proc.poll() is None:
            total, largest = _tree_rss(proc.pid)
            peak["sum"], peak["max"] = max(peak["sum"], total), max(peak["max"], largest)
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = proc.wait()
    sampler.join()
    wall = time.perf_counter() - start
    after = os.times()
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {code}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return {
        "seconds": wall,
        "cpu_seconds": cpu,
        "peak_rss_tree": peak["sum"],
        "peak_rss_process": peak["max"],
    }


def naive_seconds_per_row(source: Path, size, seed: int, n_images: int) -> tuple[float, int]:
    """CPU seconds per variant row of the naive build (every variant renders and encodes its rows)."""
    import numpy as np

    from generator.artefacts import realize_random, render
    from generator.artefacts.templates import TemplateBank
    from generator.seeding import image_seed
    from generator.sources import load_source, read_image, read_mask
    from generator.variants import VARIANTS
    from generator.variants.store import encode_mask
    from generator.variants.store import encode_png_stored as encode_png

    src = load_source(source, report=False)
    bank = TemplateBank.load("builtin", seed=seed)
    splits = {
        "train": sorted(src.train, key=lambda r: r.image_id),
        "test": sorted(src.test, key=lambda r: r.image_id),
    }
    total = len(splits["train"]) + len(splits["test"])
    # An evenly spaced subsample of each split, in proportion, keeps the train/test and class mix.
    sample = {}
    for split, recs in splits.items():
        n = min(len(recs), max(1, round(n_images * len(recs) / total)))
        sample[split] = [recs[i] for i in sorted(set(np.linspace(0, len(recs) - 1, n).astype(int)))]
    rows = 0
    start = time.process_time()
    for spec in VARIANTS.values():
        recs = sample[spec.split]
        chosen = spec.selection([r.label for r in recs], [r.image_id for r in recs], seed)
        for rec, artefact in zip(recs, chosen, strict=True):
            rgb, jpeg = read_image(rec, size)
            mask, _ = read_mask(rec, rgb.shape[:2], rgb=rgb)
            encode_mask(mask)
            if artefact:
                record = realize_random(bank, rgb.shape, mask, image_seed(seed, rec.image_id))
                image, art_mask = render(rgb, record, bank)
                encode_png(image)
                encode_mask(art_mask)
            else:
                _ = jpeg if jpeg is not None else encode_png(rgb)
                encode_mask(np.zeros(mask.shape, np.uint8))
            rows += 1
    return (time.process_time() - start) / rows, rows


def main(argv=None) -> int:
    from generator.sources.ham10000 import SYNTHETIC_MARKER
    from generator.variants import CLEAN_TEST, CLEAN_TRAIN
    from generator.variants.manifest import MANIFEST_NAME

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--size", default="600x450")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline-images", type=int, default=60, help="subsample for the naive baseline")
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the synthetic source and the output")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-generate-"))
    work.mkdir(parents=True, exist_ok=True)
    source, data = work / "src", work / "data"
    py = [sys.executable, "-m", "generator"]
    try:
        if not (source / SYNTHETIC_MARKER).is_file():
            t = time.perf_counter()
            subprocess.run(
                py
                + [
                    "synth-ham10000",
                    "--out",
                    str(source),
                    "--scale",
                    str(args.scale),
                    "--size",
                    args.size,
                    "--seed",
                    str(args.seed),
                    "--workers",
                    str(args.workers),
                    "--quiet",
                ],
                check=True,
                cwd=REPO,
            )
            print(f"synth-ham10000 --scale {args.scale}: {time.perf_counter() - t:.1f} s", file=sys.stderr)
        shutil.rmtree(data, ignore_errors=True)
        measured = run_measured(
            py
            + [
                "generate",
                "--source",
                str(source),
                "--out",
                str(data),
                "--seed",
                str(args.seed),
                "--workers",
                str(args.workers),
                "--quiet",
            ]
        )
        manifest = json.loads((data / MANIFEST_NAME).read_text())
        rows = sum(e["rows"] for e in manifest["files"])
        size = sum(e["bytes"] for e in manifest["files"])
        rows_of = {e["variant"]: e["rows"] for e in manifest["files"]}
        images = rows_of[CLEAN_TRAIN] + rows_of[CLEAN_TEST]  # every image once
        per_row, sampled = naive_seconds_per_row(source, None, args.seed, args.baseline_images)
        naive = per_row * rows / args.workers
        scale_up = 1.0 / args.scale
        figures = {
            "scale": args.scale,
            "size": args.size,
            "workers": args.workers,
            "images": images,
            "rows": rows,
            "seconds": round(measured["seconds"], 1),
            "cpu_seconds": round(measured["cpu_seconds"], 1),
            "rows_per_s": round(rows / measured["seconds"], 1),
            "images_per_s": round(images / measured["seconds"], 2),
            "bytes": size,
            "bytes_per_row": round(size / rows),
            "peak_rss_process_mb": round(measured["peak_rss_process"] / 2**20),
            "peak_rss_tree_mb": round(measured["peak_rss_tree"] / 2**20),
            "naive_seconds_per_row": round(per_row, 4),
            "naive_rows_sampled": sampled,
            "naive_estimated_seconds": round(naive, 1),
            "speedup_vs_naive": round(naive / measured["seconds"], 2),
            "cpu_speedup_vs_naive": round(per_row * rows / measured["cpu_seconds"], 2),
            "full_scale_seconds_estimate": round(measured["seconds"] * scale_up, 1),
            "full_scale_bytes_estimate": round(size * scale_up),
        }
        print(json.dumps(figures, indent=2))
        print(
            f"generate: {figures['seconds']} s wall ({figures['cpu_seconds']} s CPU), {rows} rows, "
            f"{figures['rows_per_s']} rows/s, {figures['bytes_per_row'] / 1e3:.1f} kB/row, "
            f"{size / 1e9:.2f} GB, peak RSS {figures['peak_rss_process_mb']} MB/process "
            f"({figures['peak_rss_tree_mb']} MB tree)"
        )
        print(
            f"naive per-variant build (same run, {sampled} rows sampled): {naive:.1f} s estimated -> "
            f"ratio {figures['speedup_vs_naive']}x wall, {figures['cpu_speedup_vs_naive']}x CPU"
        )
        print(
            f"full-scale estimate: {figures['full_scale_seconds_estimate']} s "
            f"(target {TARGET_SECONDS:.0f}), {figures['full_scale_bytes_estimate'] / 1e9:.1f} GB "
            f"(target {TARGET_BYTES / 1e9:.0f}); RSS target {TARGET_RSS / 2**30:.0f} GB per process"
        )
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
