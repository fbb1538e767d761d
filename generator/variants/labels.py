"""Artefact label CSVs per variant: Bissoto et al.'s convention, and a richer one of our own.

``<data_dir>/labels/<variant>_bissoto.csv`` follows the column convention of the ISIC artefact
annotations of Bissoto, Valle & Avila, "Debiasing skin lesion datasets and models? Not so fast"
(CVPR ISIC workshop 2020), file ``artefacts-annotation/isic_bias.csv`` of
github.com/alceubissoto/debiasing-skin: semicolon-separated, one 0/1 column per artefact type::

    image;dark_corner;hair;gel_border;gel_bubble;ruler;ink;patches;label;label_string

Each kind names its column in the kind registry (``KindSpec.bissoto_column``, generator.artefacts.kinds):
bubble -> gel_bubble, ruler_* -> ruler, marking_* -> ink, and hair, dark_corner, gel_border and
patches -> the column of the same name. A column is 1 only where we inserted such an artefact
(the HAM10000 source images may of course contain artefacts of their own: we did not annotate those).

Differences from the original file, on purpose:
- The original starts with an unnamed pandas index column (``;image;...``); ours has none, so
  the header is exactly the list above. Read it with ``pd.read_csv(path, sep=";")``.
- The original ``image`` is a file name (``ISIC_0000000.png``); ours is the image_id
  (``ISIC_0024306``), the key of the variant file.
- The original ``label`` is binary (0 benign / 1 malignant, label_string benign|malignant); ours
  is the 7-class HAM10000 label index and label_string its class code (akiec ... vasc).

``<variant>_artefacts.csv`` (comma-separated) adds lesion_id, dx, kind, template set, template ids
and the placement of each inserted instance (centres; flip, scale, angle), from the realization
record, plus the record itself as JSON (replayable with ``generator.artefacts.render``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..atomic import write_text_atomic

BISSOTO_COLUMNS = (
    "image",
    "dark_corner",
    "hair",
    "gel_border",
    "gel_bubble",
    "ruler",
    "ink",
    "patches",
    "label",
    "label_string",
)
BISSOTO_ARTEFACT_COLUMNS = BISSOTO_COLUMNS[1:8]
ARTEFACT_COLUMNS = (
    "image_id",
    "lesion_id",
    "dx",
    "label",
    "has_artefact",
    "kind",
    "bissoto_column",
    "template_set",
    "n_instances",
    "template",
    "position",
    "transform",
    "record",
)
LABELS_DIR = "labels"

# A realization record (generator.artefacts, format "ham-artefacts-record/1") holds "kind",
# "template_set" and "instances": [{"template", "flip", "scale", "angle", "centre"}, ...]. Records
# without "instances" are read as a single instance; keys not recognised stay in "record".
_TEMPLATE_KEYS = ("template", "template_id", "template_name")
_POSITION_KEYS = ("centre", "center", "position", "xy", "offset")
_TRANSFORM_KEYS = ("flip", "scale", "angle", "rotation")


def bissoto_column(kind: str) -> str:
    """The Bissoto column a kind maps to ('' for clean rows), from the kind registry."""
    from ..artefacts.kinds import KINDS

    if not kind:
        return ""
    if kind not in KINDS:
        raise ValueError(f"artefact kind {kind!r} has no Bissoto column")
    return KINDS[kind].bissoto_column


def _csv_field(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


def _first(mapping: dict, keys):
    return next((mapping[k] for k in keys if k in mapping), None)


def summarise_record(record: dict | None) -> dict:
    """String summaries of one realization record: template set, number of instances, template
    ids ('|'-joined), centres and per-instance transforms (JSON lists), and the whole record."""
    if not record:
        return {
            "template_set": "",
            "n_instances": 0,
            "template": "",
            "position": "",
            "transform": "",
            "record": "",
        }
    instances = record.get("instances")
    if not isinstance(instances, list):
        instances = [record]
    instances = [inst for inst in instances if isinstance(inst, dict)]
    templates = [str(t) for inst in instances if (t := _first(inst, _TEMPLATE_KEYS)) is not None]
    positions = [p for inst in instances if (p := _first(inst, _POSITION_KEYS)) is not None]
    transforms = [{k: inst[k] for k in _TRANSFORM_KEYS if k in inst} for inst in instances]
    return {
        "template_set": str(record.get("template_set", "")),
        "n_instances": len(instances),
        "template": "|".join(templates),
        "position": _csv_field(positions) if positions else "",
        "transform": _csv_field(transforms) if any(transforms) else "",
        "record": _csv_field(record),
    }


def bissoto_frame(reader):
    """A pandas DataFrame in Bissoto et al.'s columns for one VariantReader."""
    import numpy as np
    import pandas as pd

    n = len(reader)
    flags = {col: np.zeros(n, dtype=np.int64) for col in BISSOTO_ARTEFACT_COLUMNS}
    for i in np.flatnonzero(reader.has_artefact):
        flags[bissoto_column(reader.artefact_kinds[i])][i] = 1
    labels = np.asarray(reader.labels, dtype=np.int64)
    frame = pd.DataFrame(
        {
            "image": list(reader.image_ids),
            **flags,
            "label": labels,
            "label_string": [reader.classes[int(y)] for y in labels],
        }
    )
    return frame[list(BISSOTO_COLUMNS)]


def _records(reader) -> list:
    """All realization records (None for clean rows): one bulk read when the store offers it."""
    bulk = getattr(reader, "records", None)
    if callable(bulk):
        return list(bulk())
    return [reader.record(i) if has else None for i, has in enumerate(reader.has_artefact)]


def artefacts_frame(reader):
    """Our richer per-row table: ids, dx, kind, template and placement summaries."""
    import pandas as pd

    records = _records(reader)
    rows = []
    for i in range(len(reader)):
        has = bool(reader.has_artefact[i])
        kind = reader.artefact_kinds[i] if has else ""
        summary = summarise_record(records[i] if has else None)
        rows.append(
            {
                "image_id": reader.image_ids[i],
                "lesion_id": reader.lesion_ids[i],
                "dx": reader.classes[int(reader.labels[i])],
                "label": int(reader.labels[i]),
                "has_artefact": int(has),
                "kind": kind,
                "bissoto_column": bissoto_column(kind),
                **summary,
            }
        )
    return pd.DataFrame(rows, columns=list(ARTEFACT_COLUMNS))


def variant_files(data_dir: str | os.PathLike) -> list[Path]:
    """The variant files of a data folder (``*.h5``, temporary/partial files excluded), sorted."""
    return sorted(p for p in Path(data_dir).glob("*.h5") if not p.name.startswith("."))


def write_label_csvs(data_dir: str | os.PathLike, variants=None, progress: bool = True) -> list[Path]:
    """Write both label CSVs for every variant file in ``data_dir``; returns the paths written."""
    from tqdm import tqdm

    from .store import VariantReader

    data_dir = Path(data_dir)
    files = variant_files(data_dir)
    if variants is not None:
        wanted = set(variants)
        files = [f for f in files if f.stem in wanted]
    out_dir = data_dir / LABELS_DIR
    written = []
    for path in tqdm(files, desc="label CSVs", unit="variant", disable=not progress or not files):
        with VariantReader(path) as reader:
            bissoto = bissoto_frame(reader)
            rich = artefacts_frame(reader)
        target = out_dir / f"{path.stem}_bissoto.csv"
        write_text_atomic(target, bissoto.to_csv(sep=";", index=False, lineterminator="\n"))
        written.append(target)
        target = out_dir / f"{path.stem}_artefacts.csv"
        write_text_atomic(target, rich.to_csv(index=False, lineterminator="\n"))
        written.append(target)
    return written
