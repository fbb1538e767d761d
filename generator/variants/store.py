"""The HDF5 layout of one variant file: the only module that knows it (write and read).

One file per variant, N rows, every dataset of length N in the same row order::

    images            vlen uint8   encoded image: the source JPEG bytes verbatim (clean rows at
                                   source size) or lossless, uncompressed PNG (artefacted or
                                   resized rows; see encode_png_stored)
    lesion_masks      vlen uint8   PNG, mode L, 0/255
    artefact_masks    vlen uint8   PNG, mode L, 0/255 (all zero for clean rows)
    labels            int8         index into attrs["classes"]
    image_ids         str          ISIC_xxxxxxx
    lesion_ids        str          HAM_xxxxxxx (repeat images share one)
    has_artefact      bool
    artefact_kinds    str          "" for clean rows, else a kind name (bubble, ruler_vertical, ...)
    artefact_records  str          JSON realization record ("" for clean rows); replay with
                                   generator.artefacts.render
    mask_source       str          provided | auto
    meta_<column>     str/float64  the HAM10000 metadata columns (dx, dx_type, age, sex,
                                   localization, dataset); age is NaN when empty

File attributes: format, format_version, classes, variant (JSON spec), split, seed,
generator_version, source_fingerprint, templates, licence, n_rows, image_size, and families (JSON
list of the artefact families artefacted rows drew from) when they are not the paper's three
(bubble, ruler, marking).

Reading needs only h5py + numpy + Pillow::

    import h5py, io, numpy as np; from PIL import Image
    f = h5py.File("test_all.h5", "r")
    image = np.asarray(Image.open(io.BytesIO(f["images"][0])))
    label = f.attrs["classes"][f["labels"][0]]

Bytes are deterministic: no timestamps (track_times=False), fixed write order, no groups.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import CLASSES, __version__
from ..atomic import atomic_path
from ..licences import VARIANT_FILE_LICENCE

FORMAT = "ham-artefacts-variant"
FORMAT_VERSION = 1
METADATA_COLUMNS = ("dx", "dx_type", "age", "sex", "localization", "dataset")
RECORD_FIELDS = (
    ("image", "images", "sc:ImageObject", "encoded image (JPEG or PNG bytes)"),
    (
        "label",
        "labels",
        "sc:Integer",
        "diagnosis: index into the file attribute 'classes' (akiec, bcc, bkl, df, mel, nv, vasc)",
    ),
    ("lesion_mask", "lesion_masks", "sc:ImageObject", "lesion segmentation, PNG 0/255"),
    (
        "artefact_mask",
        "artefact_masks",
        "sc:ImageObject",
        "PNG 0/255: exactly the pixels the inserted artefact changed (all zero for clean rows)",
    ),
    ("has_artefact", "has_artefact", "sc:Boolean", "whether an artefact was inserted"),
    ("artefact_kind", "artefact_kinds", "sc:Text", "'' or the kind name of the inserted artefact"),
    (
        "record",
        "artefact_records",
        "sc:Text",
        "JSON realization record (templates, transforms, positions); generator.artefacts.render replays it",
    ),
    ("image_id", "image_ids", "sc:Text", "HAM10000/ISIC image id"),
    ("lesion_id", "lesion_ids", "sc:Text", "HAM10000 lesion id (repeat images share one)"),
)
"""Per-row fields for dataset descriptions (Croissant): (field name, HDF5 dataset, schema.org type, meaning)."""
_STR_COLUMNS = ("image_ids", "lesion_ids", "artefact_kinds", "artefact_records", "mask_source")


@dataclass
class Row:
    """One encoded row, ready to be written. Produced once per image, reused by every variant."""

    image_id: str
    lesion_id: str
    label: int
    image_bytes: bytes
    lesion_mask_bytes: bytes
    artefact_mask_bytes: bytes
    has_artefact: bool = False
    kind: str = ""
    record: str = ""
    mask_source: str = "provided"
    metadata: dict = field(default_factory=dict)


# --- encoding helpers (shared by writers and tests) -------------------------------------------

STORED_PNG_LEVEL = 1
"""zlib level of the PNGs in variant files (masks, and images written by tools): fast to write, and
masks compress well at any level."""


def encode_png(array: np.ndarray) -> bytes:
    """Lossless PNG bytes of a uint8 HxW or HxWx3 array as the variant files store them
    (:func:`generator.images.encode_png` at :data:`STORED_PNG_LEVEL`)."""
    from ..images import encode_png as encode

    return encode(array, compress_level=STORED_PNG_LEVEL)


def encode_png_stored(array: np.ndarray) -> bytes:
    """Lossless PNG of a uint8 HxWx3 image with no row filter and stored (uncompressed) deflate blocks.

    Any PNG reader (Pillow in the README recipe) decodes it, about 5x faster than a compressed PNG,
    and it is written about 10x faster: decode throughput is what training pays for on every
    epoch, while the bytes (600x450 -> 810 kB per row) stay within the 35 GB budget. The output
    depends on nothing but the pixels (no zlib heuristics), so it is stable across library versions.
    """
    a = np.ascontiguousarray(array, dtype=np.uint8)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected HxWx3 uint8, got {a.shape}")
    h, w = a.shape[:2]
    raw = np.zeros((h, 1 + 3 * w), np.uint8)  # a leading 0 per row: filter type None
    raw[:, 1:] = a.reshape(h, 3 * w)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit RGB, deflate, no interlace
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw.tobytes(), 0))
        + chunk(b"IEND", b"")
    )


def encode_mask(mask: np.ndarray) -> bytes:
    """PNG of a boolean / 0-1 / 0-255 mask, stored as 0/255 L."""
    return encode_png(np.where(np.asarray(mask) > 0, 255, 0).astype(np.uint8))


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_STORED_HEADER = struct.Struct(">I4sIIBBBBB")  # IHDR chunk: length, type, width, height, 5 format bytes


def decode_png_stored(data) -> np.ndarray | None:
    """HxWx3 uint8 (writable, contiguous) from a PNG written by :func:`encode_png_stored`, else None.

    Such a PNG is one IDAT of stored deflate blocks over unfiltered rows, so decoding is copying
    each block's payload into place: about 10x faster than Pillow on the same
    bytes. The block structure is checked (lengths and their complements, the total size, the row
    filter bytes); the CRC and Adler-32 checksums are not: the manifest's per-file SHA-256 guards the
    bytes (``ham-artefacts verify``), and re-checking them on every read would double the cost.
    Any other PNG or JPEG returns None (use a general decoder).
    """
    buffer = np.frombuffer(data, np.uint8)
    offset = 8 + 8 + 13 + 4  # signature, IHDR length + type, IHDR data, CRC: where the IDAT starts
    head = buffer[: offset + 8].tobytes()
    if head[:8] != _PNG_SIGNATURE or len(head) < offset + 8:
        return None
    length, kind, width, height, depth, colour, *methods = _STORED_HEADER.unpack_from(head, 8)
    if kind != b"IHDR" or length != 13 or (depth, colour, *methods) != (8, 2, 0, 0, 0):
        return None
    idat_length, idat_kind = struct.unpack_from(">I4s", head, offset)
    start, end = offset + 8, offset + 8 + idat_length
    if idat_kind != b"IDAT" or buffer[end + 8 : end + 12].tobytes() != b"IEND":  # exactly one IDAT
        return None
    stride = 1 + 3 * width
    raw = np.empty(height * stride, np.uint8)
    filled, position = 0, start + 2  # after the 2-byte zlib header
    while True:
        if position + 5 > end:
            return None
        block = buffer[position : position + 5].tobytes()
        size, complement = struct.unpack_from("<HH", block, 1)
        if block[0] & 0b110 or size ^ complement != 0xFFFF or filled + size > raw.size:
            return None  # not a stored block
        raw[filled : filled + size] = buffer[position + 5 : position + 5 + size]
        filled, position = filled + size, position + 5 + size
        if block[0] & 1:  # the final block
            break
    if filled != raw.size or position + 4 != end:  # then the 4-byte Adler-32
        return None
    rows = raw.reshape(height, stride)
    if rows[:, 0].any():  # a row filter other than None: not ours
        return None
    return rows[:, 1:].copy().reshape(height, width, 3)


def decode_image(data) -> np.ndarray:
    """HxWx3 uint8 from stored bytes (JPEG or PNG)."""
    from PIL import Image

    stored = decode_png_stored(data)
    if stored is not None:
        return stored
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def decode_mask(data) -> np.ndarray:
    """HxW uint8 0/1 from stored PNG bytes."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return (np.asarray(im.convert("L")) > 127).astype(np.uint8)


# --- writing ----------------------------------------------------------------------------------


def write_variant(path: str | os.PathLike, rows: Iterable[Row], n_rows: int, attrs: dict) -> Path:
    """Write ``n_rows`` rows to ``path`` atomically (temporary name, then rename).

    ``attrs`` holds at least: variant (dict spec), split, seed, source_fingerprint, templates.
    """
    import h5py

    path = Path(path)
    vlen = h5py.vlen_dtype(np.uint8)
    text = h5py.string_dtype("utf-8")
    kw = {"track_times": False}
    with atomic_path(path, suffix=".h5.partial") as tmp:
        with h5py.File(tmp, "w", libver=("earliest", "v110"), track_order=False) as f:
            ds = {
                "images": f.create_dataset("images", (n_rows,), dtype=vlen, **kw),
                "lesion_masks": f.create_dataset("lesion_masks", (n_rows,), dtype=vlen, **kw),
                "artefact_masks": f.create_dataset("artefact_masks", (n_rows,), dtype=vlen, **kw),
            }
            labels = np.zeros(n_rows, np.int8)
            has_artefact = np.zeros(n_rows, bool)
            strings: dict[str, list[str]] = {name: [] for name in _STR_COLUMNS}
            meta: dict[str, list] = {c: [] for c in METADATA_COLUMNS}
            shapes: set = set()
            count = 0
            for i, row in enumerate(rows):
                if i >= n_rows:
                    raise ValueError(f"{path.name}: more rows than the declared {n_rows}")
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


# --- reading ----------------------------------------------------------------------------------


class VariantReader:
    """Random access to one variant file.

    Small columns (labels, ids, kinds...) are read once, eagerly. The HDF5 handle for the big
    columns is opened lazily and re-opened in any new process, so a reader created before a
    DataLoader forks its workers never shares a handle across fork.
    """

    def __init__(self, path: str | os.PathLike):
        import h5py

        self.path = Path(path)
        if not self.path.is_file():
            from ..errors import UserError

            raise UserError(f"{self.path}: variant file not found")
        with h5py.File(self.path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                from ..errors import UserError

                raise UserError(f"{self.path}: not a ham-artefacts variant file")
            self.attrs = {k: _attr_value(v) for k, v in f.attrs.items()}
            self.labels = f["labels"][:].astype(np.int64)
            self.has_artefact = f["has_artefact"][:].astype(bool)
            self.image_ids = _strings(f["image_ids"])
            self.lesion_ids = _strings(f["lesion_ids"])
            self.artefact_kinds = _strings(f["artefact_kinds"])
            self.mask_source = _strings(f["mask_source"])
            self.metadata = {
                c: (f[f"meta_{c}"][:] if c == "age" else _strings(f[f"meta_{c}"])) for c in METADATA_COLUMNS
            }
        self.classes = tuple(self.attrs["classes"])
        self._file = None
        self._pid = None
        self._columns: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self.labels)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_file"] = None
        state["_pid"] = None
        state["_columns"] = {}
        return state

    def _h5(self):
        if self._file is None or self._pid != os.getpid():
            import h5py

            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
            self._columns = {}
        return self._file

    def _column(self, name: str):
        """The h5py dataset ``name`` of this process's handle (looked up once: a lookup costs as much
        as reading a JPEG row)."""
        h5 = self._h5()
        if name not in self._columns:
            self._columns[name] = h5[name]
        return self._columns[name]

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None
        self._columns = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def variant(self) -> dict:
        return self.attrs.get("variant", {})

    def image_bytes(self, i: int) -> bytes:
        return self._column("images")[i].tobytes()

    def image_buffer(self, i: int) -> np.ndarray:
        """The stored image bytes of row ``i`` as a uint8 array, without :meth:`image_bytes`' copy."""
        return self._column("images")[i]

    def image(self, i: int) -> np.ndarray:
        return decode_image(self._column("images")[i])

    def lesion_mask(self, i: int) -> np.ndarray:
        return decode_mask(self._column("lesion_masks")[i])

    def artefact_mask(self, i: int) -> np.ndarray:
        return decode_mask(self._column("artefact_masks")[i])

    def record(self, i: int) -> dict | None:
        text = self._h5()["artefact_records"][i]
        text = text.decode("utf-8") if isinstance(text, bytes) else text
        return json.loads(text) if text else None

    def records(self) -> list[dict | None]:
        """Every row's realization record, read in one pass (None for clean rows)."""
        texts = self._h5()["artefact_records"].asstr()[:]
        return [json.loads(t) if t else None for t in texts]

    def row(self, i: int) -> dict:
        """Everything about row ``i``, decoded."""
        return {
            "image": self.image(i),
            "lesion_mask": self.lesion_mask(i),
            "artefact_mask": self.artefact_mask(i),
            "label": int(self.labels[i]),
            "image_id": self.image_ids[i],
            "lesion_id": self.lesion_ids[i],
            "has_artefact": bool(self.has_artefact[i]),
            "kind": self.artefact_kinds[i],
            "mask_source": self.mask_source[i],
        }

    def index_of(self, image_id: str) -> int:
        if not hasattr(self, "_index"):
            self._index = {iid: i for i, iid in enumerate(self.image_ids)}
        return self._index[image_id]


def _strings(ds) -> list[str]:
    return [s for s in ds.asstr()[:]]


def _attr_value(value):
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return [v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str) and value[:1] in "{[" or value in ("null",):
        try:
            return json.loads(value)
        except (json.JSONDecodeError, TypeError):
            return value
    return value


# --- the generator's row cache ------------------------------------------------------------------
# <out>/.cache/rows-*.h5, one part per shard: every image of the source once, encoded clean and with
# its artefact, so each variant file is a selection of cached rows (generator.variants.build). It is an
# HDF5 layout too, so it lives here. (Not in the module docstring: the dataset card quotes that.)

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

    from ..atomic import atomic_path

    texts: dict[str, list] = {c: [] for c in CACHE_TEXT_COLUMNS}
    labels: list[int] = []
    pending: list[dict] = []
    vlen = h5py.vlen_dtype(np.uint8)
    with atomic_path(path, suffix=".h5.partial") as tmp, h5py.File(tmp, "w") as f:
        blobs = {c: f.create_dataset(c, (n_rows,), dtype=vlen) for c in CACHE_BLOB_COLUMNS}

        def flush():  # one HDF5 call per column for a block of rows, not one per row
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
        self.files = [h5py.File(p, "r") for p in part_paths]
        self.texts = [{c: f[c].asstr()[:] for c in CACHE_TEXT_COLUMNS} for f in self.files]
        self.labels = [f["labels"][:] for f in self.files]
        self.blobs = [{c: f[c] for c in CACHE_BLOB_COLUMNS} for f in self.files]  # handles looked up once

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
