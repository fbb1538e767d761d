"""Writing HDF5 files: a variant file's layout (``write_variant``) and the one safe way to write any
HDF5 file of this package (``hdf5_output``: temporary name, rename on success, a full disk one
UserError naming the file)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ... import CLASSES, __version__
from ...atomic import atomic_path, disk_full_error, is_disk_full
from ...licences import VARIANT_FILE_LICENCE
from .layout import FORMAT, FORMAT_VERSION, METADATA_COLUMNS, STRING_COLUMNS, Row

HDF5_HEADROOM = 64 * 2**20
"""Free bytes kept beyond each HDF5 write (:func:`ensure_room`). HDF5 holds up to its metadata cache's
32 MiB of dirty data (the global heap collections of variable-length rows among them) and may write
it during any call; and when such a write meets a full disk inside ``H5Dwrite``, HDF5 2.0 crashes
(segfault) instead of failing. So the writers stop, with the full-disk error, before the disk can
fill under HDF5."""


def ensure_room(path: Path, nbytes: int) -> None:
    """``disk_full_error(path)`` unless ``nbytes`` + HDF5_HEADROOM bytes are free where ``path`` is written."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return  # cannot tell: the write itself will say so
    if free < nbytes + HDF5_HEADROOM:
        raise disk_full_error(path)


@contextlib.contextmanager
def hdf5_output(path: Path, **options):
    """An ``h5py.File`` open for writing at a temporary name beside ``path``, renamed onto ``path`` when
    the block succeeds (``options`` go to ``h5py.File``).

    The writers call :func:`ensure_room` before each block of rows, so that the disk does not fill
    under HDF5. Should it fill anyway (another process), HDF5 reports it late and sideways: when closing (an OSError with errno 28), or from
    h5py's deallocation of a temporary object, which cannot raise and prints a traceback instead
    (a RuntimeError "Can't decrement id ref count ... errno = 28"). Such a lost flush is caught here
    and fails the write. An object half closed that way can crash HDF5 later, so every dataset
    created stays open until the file is flushed (``_KeptOpen``). A file whose writing failed cannot
    be closed either (its cached metadata still has to go somewhere), and HDF5 would retry at exit
    and crash, so it is discarded: see :func:`_discard`. ``atomic_path`` then removes the partial
    file and names ``path`` in the error.
    """
    with atomic_path(path, suffix=".h5.partial") as tmp, _lost_flushes() as lost:
        f = _kept_open_file()(tmp, "w", **options)
        try:
            yield f
            ensure_room(path, 0)
            f.flush()  # where a full disk shows, if it did not before: still a file that can be closed
            if lost:
                raise lost[0]
            f.close()
        except BaseException:
            _discard(f)
            raise


def _kept_open_file():
    """``h5py.File`` whose datasets stay open until the file closes (a dataset dropped mid-write would
    be closed, and flushed, by its deallocation, which cannot report a full disk)."""
    import h5py

    class KeptOpen(h5py.File):
        def create_dataset(self, *args, **kwargs):
            dataset = super().create_dataset(*args, **kwargs)
            self.__dict__.setdefault("kept_datasets", []).append(dataset)
            return dataset

    return KeptOpen


def _discard(f) -> None:
    """Close an HDF5 file whose writes failed without needing the disk: the library's descriptor of the
    partial file is pointed at an anonymous in-memory file (Linux ``memfd_create``), so its last
    writes land there and the close succeeds, releasing every object of the file (their later
    deallocation at exit is what crashed). Elsewhere, the close is only attempted."""
    with contextlib.suppress(Exception):
        if f.id.valid and hasattr(os, "memfd_create"):
            sink = os.memfd_create("ham-artefacts-discarded-hdf5")
            try:
                os.dup2(sink, f.id.get_vfd_handle())
            finally:
                os.close(sink)
    with contextlib.suppress(Exception):
        f.close()


@contextlib.contextmanager
def _lost_flushes() -> Iterator[list[BaseException]]:
    """Collects the full-disk errors that h5py reports from deallocations instead of printing them
    (Cython prints those through ``sys.excepthook``, then ``sys.unraisablehook``); any other error
    goes to the previous hook."""
    lost: list[BaseException] = []
    previous_unraisable, previous_except = sys.unraisablehook, sys.excepthook

    def unraisable_hook(unraisable) -> None:
        if unraisable.exc_value is not None and is_disk_full(unraisable.exc_value):
            lost.append(unraisable.exc_value)
        else:
            previous_unraisable(unraisable)

    def except_hook(kind, value, traceback) -> None:
        if is_disk_full(value):
            lost.append(value)
        else:
            previous_except(kind, value, traceback)

    sys.unraisablehook, sys.excepthook = unraisable_hook, except_hook
    try:
        yield lost
    finally:
        sys.unraisablehook, sys.excepthook = previous_unraisable, previous_except


def write_variant(path: str | os.PathLike, rows: Iterable[Row], n_rows: int, attrs: dict) -> Path:
    """Write ``n_rows`` rows to ``path`` atomically (temporary name, then rename).

    ``attrs`` holds at least: variant (dict spec), split, seed, source_fingerprint, templates.
    """
    import h5py

    path = Path(path)
    vlen = h5py.vlen_dtype(np.uint8)
    text = h5py.string_dtype("utf-8")
    kw = {"track_times": False}
    with hdf5_output(path, libver=("earliest", "v110"), track_order=False) as f:
        ds = {
            "images": f.create_dataset("images", (n_rows,), dtype=vlen, **kw),
            "lesion_masks": f.create_dataset("lesion_masks", (n_rows,), dtype=vlen, **kw),
            "artefact_masks": f.create_dataset("artefact_masks", (n_rows,), dtype=vlen, **kw),
        }
        labels = np.zeros(n_rows, np.int8)
        has_artefact = np.zeros(n_rows, bool)
        strings: dict[str, list[str]] = {name: [] for name in STRING_COLUMNS}
        meta: dict[str, list] = {c: [] for c in METADATA_COLUMNS}
        shapes: set = set()
        count = 0
        for i, row in enumerate(rows):
            if i >= n_rows:
                raise ValueError(f"{path.name}: more rows than the declared {n_rows}")
            ensure_room(
                path, len(row.image_bytes) + len(row.lesion_mask_bytes) + len(row.artefact_mask_bytes)
            )
            ds["images"][i] = np.frombuffer(row.image_bytes, np.uint8)
            ds["lesion_masks"][i] = np.frombuffer(row.lesion_mask_bytes, np.uint8)
            ds["artefact_masks"][i] = np.frombuffer(row.artefact_mask_bytes, np.uint8)
            labels[i] = row.label
            has_artefact[i] = row.has_artefact
            strings["image_ids"].append(row.image_id)
            strings["lesion_ids"].append(row.lesion_id)
            strings["artefact_kinds"].append(row.kind)
            strings["artefact_records"].append(row.record)
            strings["mask_source"].append(row.mask_source)
            for c in METADATA_COLUMNS:
                meta[c].append(row.metadata.get(c, CLASSES[row.label] if c == "dx" else ""))
            shapes.add(_png_or_jpeg_size(row.image_bytes))
            count += 1
        if count != n_rows:
            raise ValueError(f"{path.name}: got {count} rows, declared {n_rows}")
        f.create_dataset("labels", data=labels, **kw)
        f.create_dataset("has_artefact", data=has_artefact, **kw)
        for name, values in strings.items():
            f.create_dataset(name, data=np.array(values, dtype=object), dtype=text, **kw)
        for c, values in meta.items():
            if c == "age":
                arr = np.array([_to_float(v) for v in values], np.float64)
                f.create_dataset(f"meta_{c}", data=arr, **kw)
            else:
                f.create_dataset(
                    f"meta_{c}", data=np.array([str(v) for v in values], dtype=object), dtype=text, **kw
                )
        all_attrs = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "classes": list(CLASSES),
            "generator_version": __version__,
            "licence": VARIANT_FILE_LICENCE,
            "n_rows": n_rows,
            "image_size": json.dumps(sorted(shapes)[0] if len(shapes) == 1 else None),
        }
        all_attrs.update(attrs)
        for key in sorted(all_attrs):
            value = all_attrs[key]
            if isinstance(value, dict | list) and key != "classes":
                value = json.dumps(value, sort_keys=True)
            f.attrs[key] = value
    return path


def _to_float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _png_or_jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header without decoding pixels."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Exception:  # noqa: BLE001 - size is informative only
        return None
