"""Reading a variant file: ``VariantReader``. A damaged file (truncated, flipped bytes that HDF5 or the
image decoder notices) is one UserError naming the file, never an h5py or Pillow traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import UserError
from .codec import decode_image, decode_mask
from .layout import FORMAT, METADATA_COLUMNS

# What h5py raises on damaged bytes: OSError or RuntimeError from HDF5, KeyError when an object's
# header cannot be read; opening also parses attributes (ValueError, TypeError). An IndexError (a row
# past the end) is the caller's, not the file's, and passes through.
OPEN_ERRORS = (OSError, KeyError, RuntimeError, ValueError, TypeError)
READ_ERRORS = (OSError, KeyError, RuntimeError)


def damaged(path: Path, exc: BaseException, where: str = "") -> UserError:
    """The one message of a variant file that cannot be read."""
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return UserError(
        f"{path}{where}: damaged or not a readable variant file ({detail}); "
        "check it with `ham-artefacts verify` and fetch or generate it again"
    )


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
            raise UserError(f"{self.path}: variant file not found")
        try:
            with h5py.File(self.path, "r") as f:
                if f.attrs.get("format") != FORMAT:
                    raise UserError(f"{self.path}: not a ham-artefacts variant file")
                self.attrs = {k: _attr_value(v) for k, v in f.attrs.items()}
                self.labels = f["labels"][:].astype(np.int64)
                self.has_artefact = f["has_artefact"][:].astype(bool)
                self.image_ids = _strings(f["image_ids"])
                self.lesion_ids = _strings(f["lesion_ids"])
                self.artefact_kinds = _strings(f["artefact_kinds"])
                self.mask_source = _strings(f["mask_source"])
                self.metadata = {
                    c: (f[f"meta_{c}"][:] if c == "age" else _strings(f[f"meta_{c}"]))
                    for c in METADATA_COLUMNS
                }
            self.classes = tuple(self.attrs["classes"])
        except UserError:
            raise
        except OPEN_ERRORS as exc:
            raise damaged(self.path, exc) from None
        self._file = None
        self._pid: int | None = None
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

            try:
                self._file = h5py.File(self.path, "r")
            except OPEN_ERRORS as exc:
                raise damaged(self.path, exc) from None
            self._pid = os.getpid()
            self._columns = {}
        return self._file

    def _column(self, name: str):
        """The h5py dataset ``name`` of this process's handle (looked up once: a lookup costs as much
        as reading a JPEG row)."""
        h5 = self._h5()
        if name not in self._columns:
            try:
                self._columns[name] = h5[name]
            except READ_ERRORS as exc:
                raise damaged(self.path, exc, f", column {name}") from None
        return self._columns[name]

    def _cell(self, name: str, i: int) -> Any:
        """Row ``i`` of the column ``name``: a uint8 array of a blob column, bytes of a text column."""
        column = self._column(name)
        try:
            return column[i]
        except READ_ERRORS as exc:
            raise damaged(self.path, exc, f", row {i} of {name}") from None

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
        return self._cell("images", i).tobytes()

    def image_buffer(self, i: int) -> np.ndarray:
        """The stored image bytes of row ``i`` as a uint8 array, without :meth:`image_bytes`' copy."""
        return self._cell("images", i)

    def image(self, i: int) -> np.ndarray:
        return self._decoded(decode_image, "images", i)

    def lesion_mask(self, i: int) -> np.ndarray:
        return self._decoded(decode_mask, "lesion_masks", i)

    def artefact_mask(self, i: int) -> np.ndarray:
        return self._decoded(decode_mask, "artefact_masks", i)

    def _decoded(self, decode, name: str, i: int) -> np.ndarray:
        data = self._cell(name, i)
        try:
            return decode(data)
        except Exception as exc:  # noqa: BLE001 - stored bytes that do not decode: the file is damaged
            raise damaged(self.path, exc, f", row {i} of {name}") from None

    def record(self, i: int) -> dict | None:
        text = self._cell("artefact_records", i)
        try:
            text = text.decode("utf-8") if isinstance(text, bytes) else text
            return json.loads(text) if text else None
        except ValueError as exc:  # bad UTF-8 or JSON
            raise damaged(self.path, exc, f", row {i} of artefact_records") from None

    def records(self) -> list[dict | None]:
        """Every row's realization record, read in one pass (None for clean rows)."""
        try:
            texts = self._column("artefact_records").asstr()[:]
            return [json.loads(t) if t else None for t in texts]
        except (*READ_ERRORS, ValueError) as exc:
            raise damaged(self.path, exc, ", artefact_records") from None

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
