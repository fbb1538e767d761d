"""The variant file's columns and attributes (names only; ``writer`` and ``reader`` do the HDF5)."""

from __future__ import annotations

from dataclasses import dataclass, field

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
STRING_COLUMNS = ("image_ids", "lesion_ids", "artefact_kinds", "artefact_records", "mask_source")


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
