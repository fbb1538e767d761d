"""Benchmark of the source fingerprint of content (issue 24, case 4), against the names-and-sizes one.

    python benchmarks/integrity.py                  # a synthetic source at --scale 0.3 (about 2 min)
    python benchmarks/integrity.py --source DIR     # any HAM10000 folder, e.g. the real one

`load_source` hashes every byte a build reads (metadata, ground truth, images, masks) with SHA-256;
until 0.2.0 the fingerprint took each file's name and size only. Both are timed on the same records
in the same run, alternating, --repeat times (machines drift), each with the page cache warm (the
files were just read) and, where the OS allows, cold (each file's cached pages dropped first with
posix_fadvise, which only evicts these files). Printed: MB/s, seconds per GB, the ratio against the
names-and-sizes fingerprint, the whole `load_source` (walk, tables, hashing), and a full-scale
estimate. `generate` pays this once per run; it then checks each file's SHA-256 again as a worker
reads it (the same MB/s, spread over the workers), so that a file changed mid-build is refused.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def names_and_sizes(metadata_path: Path, ground_truth: Path | None, records) -> str:
    """The fingerprint before 0.2.0 (``ham10000-source/1``): tables by content, the rest by name and size."""
    h = hashlib.sha256(b"ham10000-source/1\n")
    for table in (metadata_path, ground_truth):
        h.update((hashlib.sha256(table.read_bytes()).hexdigest() if table else "-").encode() + b"\n")
    for rec in records:
        mask = f"{rec.mask_path.name}:{rec.mask_path.stat().st_size}" if rec.mask_path else "-"
        h.update(f"{rec.split}:{rec.image_path.name}:{rec.image_path.stat().st_size}:{mask}\n".encode())
    return h.hexdigest()


def of_content(source, records) -> str:
    """The fingerprint of content, from scratch (every file read and hashed)."""
    from generator.sources.scan import ContentDigests, fingerprint

    digest = ContentDigests()
    for rec in records:  # what load_source does while it builds the records
        digest(rec.image_path)
        if rec.mask_path:
            digest(rec.mask_path)
    return fingerprint((source.metadata_path, source.ground_truth_path), records, source.synthetic, digest)


def drop_cached(paths) -> bool:
    """Evict ``paths`` from the page cache; False where the OS cannot."""
    if not hasattr(os, "posix_fadvise"):
        return False
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return True


def timed(func, *args, **kwargs) -> float:
    start = time.perf_counter()
    func(*args, **kwargs)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.3, help="synthetic source scale (1.0: full size)")
    parser.add_argument("--source", type=Path, default=None, help="an existing HAM10000 folder instead")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="for synth-ham10000")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    from generator.sources import load_source

    work = None
    source_dir = args.source
    if source_dir is None:
        work = Path(tempfile.mkdtemp(prefix="bench-integrity-"))
        source_dir = work / "src"
        cmd = [sys.executable, "-m", "generator", "synth-ham10000", "--out", str(source_dir)]
        cmd += ["--scale", str(args.scale), "--workers", str(args.workers), "--quiet"]
        subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    try:
        source = load_source(source_dir, report=False)
        records = [*source.train, *source.test]
        files = [source.metadata_path, *([source.ground_truth_path] if source.ground_truth_path else [])]
        files += [p for r in records for p in (r.image_path, r.mask_path) if p is not None]
        total = sum(p.stat().st_size for p in files)
        times: dict[str, list[float]] = {k: [] for k in ("old", "new", "new_cold", "load", "load_cold")}
        cold = True
        for _ in range(args.repeat):
            times["old"].append(
                timed(names_and_sizes, source.metadata_path, source.ground_truth_path, records)
            )
            times["new"].append(timed(of_content, source, records))
            times["load"].append(timed(load_source, source_dir, report=False))
            if cold and drop_cached(files):
                times["new_cold"].append(timed(of_content, source, records))
                drop_cached(files)
                times["load_cold"].append(timed(load_source, source_dir, report=False))
            else:
                cold = False
        median = {k: statistics.median(v) for k, v in times.items() if v}
        spread = {k: (min(v), max(v)) for k, v in times.items() if v}
        scale = args.scale if args.source is None else None
        figures = {
            "source": "synthetic" if args.source is None else str(args.source),
            "scale": scale,
            "files": len(files),
            "bytes": total,
            "repeat": args.repeat,
            "seconds": {k: round(v, 4) for k, v in median.items()},
            "seconds_min_max": {k: [round(a, 4), round(b, 4)] for k, (a, b) in spread.items()},
            "content_mb_per_s_warm": round(total / 1e6 / median["new"], 1),
            "content_s_per_gb_warm": round(median["new"] / (total / 1e9), 2),
            "ratio_content_vs_names_and_sizes_warm": round(median["new"] / median["old"], 1),
        }
        if "new_cold" in median:
            figures["content_mb_per_s_cold"] = round(total / 1e6 / median["new_cold"], 1)
            figures["content_s_per_gb_cold"] = round(median["new_cold"] / (total / 1e9), 2)
            figures["ratio_content_vs_names_and_sizes_cold"] = round(median["new_cold"] / median["old"], 1)
        if scale:
            figures["full_scale_bytes_estimate"] = round(total / scale)
            figures["full_scale_load_source_s_estimate"] = round(median["load"] / scale, 1)
        print(json.dumps(figures, indent=2))
        print(
            f"content fingerprint: {figures['content_mb_per_s_warm']} MB/s warm "
            f"({figures['content_s_per_gb_warm']} s/GB)"
            + (
                f", {figures['content_mb_per_s_cold']} MB/s cold ({figures['content_s_per_gb_cold']} s/GB)"
                if "new_cold" in median
                else ""
            )
            + f"; {figures['ratio_content_vs_names_and_sizes_warm']}x the names-and-sizes fingerprint "
            f"({median['old'] * 1e3:.0f} ms) on {len(files)} files, {total / 1e6:.0f} MB"
        )
        print(
            f"load_source: {median['load']:.2f} s warm"
            + (f", {median['load_cold']:.2f} s cold" if cold else "")
        )
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
