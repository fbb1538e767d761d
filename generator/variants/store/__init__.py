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

from .cache import CACHE_BLOB_COLUMNS, CACHE_TEXT_COLUMNS, RowCache, write_cache_part
from .codec import (
    STORED_PNG_LEVEL,
    decode_image,
    decode_mask,
    decode_png_stored,
    encode_mask,
    encode_png,
    encode_png_stored,
)
from .layout import FORMAT, FORMAT_VERSION, METADATA_COLUMNS, RECORD_FIELDS, Row
from .reader import VariantReader
from .writer import HDF5_HEADROOM, ensure_room, hdf5_output, write_variant

__all__ = [
    "CACHE_BLOB_COLUMNS",
    "CACHE_TEXT_COLUMNS",
    "FORMAT",
    "FORMAT_VERSION",
    "HDF5_HEADROOM",
    "METADATA_COLUMNS",
    "RECORD_FIELDS",
    "STORED_PNG_LEVEL",
    "Row",
    "RowCache",
    "VariantReader",
    "decode_image",
    "decode_mask",
    "decode_png_stored",
    "encode_mask",
    "encode_png",
    "encode_png_stored",
    "ensure_room",
    "hdf5_output",
    "write_cache_part",
    "write_variant",
]
