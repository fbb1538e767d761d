"""What the consumers' integrity check costs (generator.variants.verified.open_checked).

A consumer (train, predict, gradcam, HAMArtefacts) opens a variant file only through its manifest entry.
The first open of a file hashes it in full; later opens trust the digest while the file's device, inode,
size and mtime stand. Measured here, in one process, repeated (machines drift):

* first open: seconds per GB of the full SHA-256 (the file is in the page cache; a cold disk adds its
  read time, which the training run pays anyway when it reads the rows);
* later opens: open_checked against the bare VariantReader open it wraps (the baseline), as a ratio.

    .venv/bin/python benchmarks/verify_cost.py [--gb 0.5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _variant_folder(folder: Path, megabytes: int) -> tuple[Path, str]:
    """A real variant folder (tiny synthetic build) whose train_none.h5 is padded to the wanted size."""
    from generator.sources.synth import synthesize_ham10000
    from generator.variants.build import generate
    from generator.variants.manifest import MANIFEST_NAME, sha256_file

    source = synthesize_ham10000(
        folder / "src", scale=0.01, test_scale=0.02, size=(64, 48), seed=0, progress=False
    )
    generate(source, folder / "data", seed=0, workers=1, progress=False, variants=["train_none", "test_none"])
    data = folder / "data"
    path = data / "train_none.h5"
    with open(path, "ab") as f:  # HDF5 ignores bytes past its end of file: the size is what we time
        block = os.urandom(1 << 20)
        for _ in range(megabytes):
            f.write(block)
    manifest = json.loads((data / MANIFEST_NAME).read_text())
    for entry in manifest["files"]:
        if entry["name"] == path.name:
            entry["bytes"], entry["sha256"] = path.stat().st_size, sha256_file(path)
    (data / MANIFEST_NAME).write_text(json.dumps(manifest))
    return data, "train_none"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=0.5, help="size of the file hashed (GB)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    from generator.variants import verified
    from generator.variants.store import VariantReader

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")
        data, variant = _variant_folder(Path(tmp), int(args.gb * 1024))
        path = data / f"{variant}.h5"
        gb = path.stat().st_size / 1e9
        first, later, bare = [], [], []
        for _ in range(args.repeat):
            (verified.cache_dir() / verified.CACHE_FILE).unlink(missing_ok=True)
            t = time.perf_counter()
            verified.open_checked(data, variant)
            first.append(time.perf_counter() - t)
            for _ in range(5):
                t = time.perf_counter()
                verified.open_checked(data, variant)
                later.append(time.perf_counter() - t)
                t = time.perf_counter()
                VariantReader(path)
                bare.append(time.perf_counter() - t)
    first_s, later_s, bare_s = statistics.median(first), statistics.median(later), statistics.median(bare)
    print(f"file: {gb:.2f} GB, {args.repeat} rounds (medians)")
    print(
        f"first open (full SHA-256): {first_s:.2f} s = {first_s / gb:.2f} s/GB ({gb / first_s * 1000:.0f} MB/s)"
    )
    print(
        f"later opens: {later_s * 1000:.1f} ms, bare VariantReader {bare_s * 1000:.1f} ms: ratio {later_s / bare_s:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
