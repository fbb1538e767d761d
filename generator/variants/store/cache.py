"""The generator's row cache, ``<out>/.cache/rows-*.h5``, one part per shard: every image of the source
once, encoded clean and with its artefact, so each variant file is a selection of cached rows
(generator.variants.build). It is an HDF5 layout too, so it lives in this package (and not in the
package docstring: the dataset card quotes that)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from ...errors import UserError
from .layout import Row
from .reader import OPEN_ERRORS
from .writer import ensure_room, hdf5_output

CACHE_BLOB_COLUMNS = ("lesion_mask", "clean_image", "clean_mask", "art_image", "art_mask")
CACHE_TEXT_COLUMNS = (
    "image_id",
    "lesion_id",
    "mask_source",
    "meta",
    "clean_digest",
    "art_digest",
    "kind",
    "record",
)


@contextlib.contextmanager
def write_cache_part(path: Path, n_rows: int, attrs: dict) -> Iterator[Callable[[dict], None]]:
    """Write a cache part atomically: yields ``append(result)``, called once per row in order with a
    dict holding every CACHE_*_COLUMNS key and ``label``; ``attrs`` become file attributes."""
    import h5py

    texts: dict[str, list] = {c: [] for c in CACHE_TEXT_COLUMNS}
    labels: list[int] = []
    pending: list[dict] = []
    vlen = h5py.vlen_dtype(np.uint8)
    with hdf5_output(path) as f:
        blobs = {c: f.create_dataset(c, (n_rows,), dtype=vlen) for c in CACHE_BLOB_COLUMNS}

        def flush():  # one HDF5 call per column for a block of rows, not one per row
            ensure_room(path, sum(len(r[c]) for r in pending for c in CACHE_BLOB_COLUMNS))
            start = len(labels) - len(pending)
            for c in CACHE_BLOB_COLUMNS:
                values = [np.frombuffer(r[c], np.uint8) for r in pending]
                if len({len(v) for v in values}) > 1:
                    array = np.empty(len(values), dtype=object)
                    for i, v in enumerate(values):
                        array[i] = v
                    blobs[c][start : start + len(values)] = array
                else:  # h5py turns equal-length rows into a 2-D array and refuses them: row by row
                    for i, v in enumerate(values):
                        blobs[c][start + i] = v
            pending.clear()

        def append(result: dict) -> None:
            for c in CACHE_TEXT_COLUMNS:
                texts[c].append(result[c])
            labels.append(result["label"])
            pending.append(result)
            if len(pending) == 16:
                flush()

        yield append
        if pending:
            flush()
        text = h5py.string_dtype("utf-8")
        for c, values in texts.items():
            f.create_dataset(c, data=np.array(values, dtype=object), dtype=text)
        f.create_dataset("labels", data=np.array(labels, np.int8))
        for key, value in attrs.items():
            f.attrs[key] = value


class RowCache:
    """Read access to the complete set of cache parts: global index -> clean or artefacted Row.

    Image k lives in part k % n at position k // n (the shard split of ``build_part``)."""

    def __init__(self, part_paths: Sequence[Path]):
        import h5py

        self.n = len(part_paths)
        self.files = []
        self.texts, self.labels, self.blobs = [], [], []
        for p in part_paths:
            try:
                f = h5py.File(p, "r")
                self.files.append(f)
                self.texts.append({c: f[c].asstr()[:] for c in CACHE_TEXT_COLUMNS})
                self.labels.append(f["labels"][:])
                self.blobs.append({c: f[c] for c in CACHE_BLOB_COLUMNS})  # handles looked up once
            except OPEN_ERRORS as exc:
                self.close()
                raise UserError(
                    f"{p}: damaged row cache part ({' '.join(str(exc).split())}); delete it and run again"
                ) from None

    def close(self) -> None:
        for f in self.files:
            f.close()

    def rows(self, indices: Sequence[int], chosen: Sequence[bool], block: int = 32) -> Iterator:
        """Rows for global indices (ascending) in order, read a block of slices at a time: one HDF5
        call per column and block instead of one per row."""
        for start in range(0, len(indices), block):
            pairs = [
                (int(k), bool(a))
                for k, a in zip(indices[start : start + block], chosen[start : start + block], strict=True)
            ]
            got: dict[tuple[int, str], np.ndarray] = {}
            first: dict[int, int] = {}
            for p in sorted({k % self.n for k, _ in pairs}):
                mine = [(k // self.n, a) for k, a in pairs if k % self.n == p]
                j0, j1 = mine[0][0], mine[-1][0] + 1
                first[p] = j0
                want = ["lesion_mask"]
                if any(a for _, a in mine):
                    want += ["art_image", "art_mask"]
                if not all(a for _, a in mine):
                    want += ["clean_image", "clean_mask"]
                for c in want:
                    got[p, c] = self.blobs[p][c][j0:j1]
            for k, a in pairs:
                p, j = k % self.n, k // self.n
                t, i = self.texts[p], j - first[p]
                prefix = "art_" if a else "clean_"
                yield Row(
                    image_id=t["image_id"][j],
                    lesion_id=t["lesion_id"][j],
                    label=int(self.labels[p][j]),
                    image_bytes=got[p, prefix + "image"][i].tobytes(),
                    lesion_mask_bytes=got[p, "lesion_mask"][i].tobytes(),
                    artefact_mask_bytes=got[p, prefix + "mask"][i].tobytes(),
                    has_artefact=a,
                    kind=t["kind"][j] if a else "",
                    record=t["record"][j] if a else "",
                    mask_source=t["mask_source"][j],
                    metadata=json.loads(t["meta"][j]),
                )

    def digest(self, k: int, artefact: bool) -> bytes:
        t = self.texts[k % self.n]
        return bytes.fromhex(t["art_digest" if artefact else "clean_digest"][k // self.n])
