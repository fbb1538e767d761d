"""The ``ham10000`` adapter: the Harvard Dataverse layout of HAM10000 (doi:10.7910/DVN/DBW86T).

Layout (folders may be nested anywhere below the root; everything is found by name)::

    HAM10000_metadata[.csv|.tab|.txt]          lesion_id,image_id,dx,dx_type,age,sex,localization,dataset
    .../ISIC_0024306.jpg ...                    training images (e.g. HAM10000_images_part_1/, _part_2/)
    HAM10000_segmentations_lesion_tschandl/ISIC_0024306_segmentation.png   0/255 lesion masks
    ISIC2018_Task3_Test_Images/ISIC_*.jpg       test images (no masks)
    ISIC2018_Task3_Test_*.csv                   test ground truth: HAM metadata columns, or the ISIC
                                                challenge one-hot table image,MEL,NV,BCC,AKIEC,BKL,DF,VASC

Every problem with the input raises ``UserError`` naming the file (and row) at fault.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .. import CLASSES
from ..errors import UserError

METADATA_STEM = "HAM10000_metadata"
REQUIRED_COLUMNS = ("lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization", "dataset")
METADATA_KEYS = ("dx", "dx_type", "age", "sex", "localization", "dataset")
ONEHOT_COLUMNS = ("image", "MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")
TEST_IMAGES_DIR_PREFIX = "ISIC2018_Task3_Test_Images"
TEST_TABLE_PREFIX = "ISIC2018_Task3_Test"
TABLE_SUFFIXES = ("", ".csv", ".tab", ".tsv", ".txt")
MASK_SUFFIX = "_segmentation.png"
SYNTHETIC_MARKER = "SYNTHETIC.txt"
# The Harvard Dataverse file names, as ``ham-artefacts synth-ham10000`` writes them (the reader above
# accepts any .csv/.tab/.txt table and finds images and masks in any sub-folder).
METADATA_NAME = f"{METADATA_STEM}.csv"
TRAIN_IMAGE_DIRS = ("HAM10000_images_part_1", "HAM10000_images_part_2")
MASK_DIR = "HAM10000_segmentations_lesion_tschandl"
TEST_IMAGES_DIR = TEST_IMAGES_DIR_PREFIX
TEST_GROUND_TRUTH_NAME = f"{TEST_TABLE_PREFIX}_GroundTruth.csv"

EXPECTED_COUNTS: dict[str, dict[str, int]] = {
    "train": {"nv": 6705, "mel": 1113, "bkl": 1099, "bcc": 514, "akiec": 327, "vasc": 142, "df": 115},
    "test": {"nv": 908, "mel": 171, "bkl": 217, "bcc": 93, "akiec": 43, "vasc": 35, "df": 44},
}
"""Per-class image counts of the published HAM10000 training set and ISIC 2018 Task 3 test set."""

_IMAGE_RE = re.compile(r"^(ISIC_\d+)\.(jpe?g)$", re.IGNORECASE)
_MASK_RE = re.compile(r"^(ISIC_\d+)_segmentation\.png$", re.IGNORECASE)


@dataclass(frozen=True)
class SourceRecord:
    """One source image: where its pixels and (optional) lesion mask live, and its metadata."""

    image_id: str
    lesion_id: str
    dx: str
    label: int
    split: str  # "train" | "test"
    image_path: Path
    mask_path: Path | None
    metadata: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass
class Source:
    """A loaded HAM10000 folder: training and test records plus a fingerprint of the inputs."""

    root: Path
    train: list[SourceRecord]
    test: list[SourceRecord]
    fingerprint: str
    synthetic: bool
    metadata_path: Path
    ground_truth_path: Path | None = None
    ground_truth_format: str | None = None  # "ham" | "onehot" | None (no test set)

    def records(self, split: str) -> list[SourceRecord]:
        if split not in ("train", "test"):
            raise ValueError(f"unknown split {split!r}")
        return self.train if split == "train" else self.test

    def class_counts(self, split: str) -> dict[str, int]:
        counts = Counter(r.dx for r in self.records(split))
        return {c: counts.get(c, 0) for c in CLASSES}


# --- table parsing ----------------------------------------------------------------------------


def _read_table(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header (stripped) and (line number, values) rows of a comma- or tab-separated file."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not a UTF-8 text table ({exc.reason})") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    lines = text.splitlines()
    header_line = next((ln for ln in lines if ln.strip()), None)
    if header_line is None:
        raise UserError(f"{path}: empty file (expected a header row)")
    delimiter = "\t" if "\t" in header_line else ","
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', skipinitialspace=True
    )
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    try:
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            values = [v.strip() for v in values]
            if header is None:
                header = values
            else:
                rows.append((reader.line_num, values))
    except csv.Error as exc:
        raise UserError(f"{path}, line {reader.line_num}: malformed table ({exc})") from None
    assert header is not None
    return header, rows


def _rows_as_dicts(path: Path, header: list[str], rows, required: tuple[str, ...]):
    lower = [h.lower() for h in header]
    missing = [c for c in required if c.lower() not in lower]
    if missing:
        raise UserError(
            f"{path}: missing required column(s) {', '.join(missing)} (found: {', '.join(header) or 'none'})"
        )
    for line, values in rows:
        if len(values) != len(header):
            raise UserError(f"{path}, row {line}: expected {len(header)} fields, found {len(values)}")
        yield line, dict(zip(lower, values, strict=True))


def _check_image_id(path: Path, line: int, image_id: str) -> None:
    if not re.fullmatch(r"ISIC_\d+", image_id):
        raise UserError(
            f"{path}, row {line}: malformed image_id {image_id!r} (expected ISIC_ followed by digits)"
        )


def _check_age(path: Path, line: int, age: str) -> None:
    if age == "":
        return
    try:
        float(age)
    except ValueError:
        raise UserError(
            f"{path}, row {line}: age {age!r} is not a number (leave it empty if unknown)"
        ) from None


def _parse_ham_rows(path: Path, header, rows) -> list[tuple[int, dict]]:
    """Validated HAM10000-metadata rows: known dx, unique image_id, numeric or empty age."""
    out = []
    seen: dict[str, int] = {}
    for line, row in _rows_as_dicts(path, header, rows, REQUIRED_COLUMNS):
        image_id = row["image_id"]
        _check_image_id(path, line, image_id)
        if image_id in seen:
            raise UserError(
                f"{path}, row {line}: duplicate image_id {image_id} (first listed at row {seen[image_id]})"
            )
        seen[image_id] = line
        dx = row["dx"].lower()
        if dx not in CLASSES:
            raise UserError(
                f"{path}, row {line} ({image_id}): unknown dx {row['dx']!r} (expected one of {', '.join(CLASSES)})"
            )
        if not row["lesion_id"]:
            raise UserError(f"{path}, row {line} ({image_id}): empty lesion_id")
        _check_age(path, line, row["age"])
        row["dx"] = dx
        out.append((line, row))
    if not out:
        raise UserError(f"{path}: no data rows")
    return out


def _parse_onehot_rows(path: Path, header, rows) -> list[tuple[int, dict]]:
    """ISIC 2018 Task 3 ground truth (image,MEL,NV,...): one 1.0 per row, turned into HAM-style rows."""
    out = []
    seen: dict[str, int] = {}
    for line, row in _rows_as_dicts(path, header, rows, ONEHOT_COLUMNS):
        image_id = row["image"]
        _check_image_id(path, line, image_id)
        if image_id in seen:
            raise UserError(
                f"{path}, row {line}: duplicate image {image_id} (first listed at row {seen[image_id]})"
            )
        seen[image_id] = line
        try:
            scores = {c: float(row[c.lower()]) for c in ONEHOT_COLUMNS[1:]}
        except ValueError:
            raise UserError(f"{path}, row {line} ({image_id}): class columns must be 0 or 1") from None
        hot = [c for c, v in scores.items() if v == 1.0]
        if len(hot) != 1 or any(v not in (0.0, 1.0) for v in scores.values()):
            raise UserError(f"{path}, row {line} ({image_id}): expected exactly one class column set to 1")
        dx = hot[0].lower()
        out.append(
            (
                line,
                {
                    "lesion_id": "",
                    "image_id": image_id,
                    "dx": dx,
                    "dx_type": "",
                    "age": "",
                    "sex": "",
                    "localization": "",
                    "dataset": "",
                },
            )
        )
    if not out:
        raise UserError(f"{path}: no data rows")
    return out


# --- file discovery ---------------------------------------------------------------------------


@dataclass
class _Inventory:
    metadata: list[Path] = field(default_factory=list)
    test_tables: list[Path] = field(default_factory=list)
    train_images: dict[str, Path] = field(default_factory=dict)
    test_images: dict[str, Path] = field(default_factory=dict)
    masks: dict[str, Path] = field(default_factory=dict)
    n_files: int = 0


def _table_name_matches(name: str, prefix: str) -> bool:
    if not name.startswith(prefix):
        return False
    suffix = name[len(prefix) :]
    if prefix == METADATA_STEM:
        return suffix.lower() in TABLE_SUFFIXES
    return Path(name).suffix.lower() in TABLE_SUFFIXES


def _scan(root: Path) -> _Inventory:
    inv = _Inventory()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):  # image folders may be symlinks
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        here = Path(dirpath)
        in_test = any(p.startswith(TEST_IMAGES_DIR_PREFIX) for p in here.relative_to(root).parts)
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            inv.n_files += 1
            if _table_name_matches(name, METADATA_STEM):
                inv.metadata.append(here / name)
            elif _table_name_matches(name, TEST_TABLE_PREFIX) and not in_test:
                inv.test_tables.append(here / name)
            elif m := _IMAGE_RE.match(name):
                index = inv.test_images if in_test else inv.train_images
                index.setdefault(m.group(1), here / name)  # first in sorted walk order wins
            elif m := _MASK_RE.match(name):
                inv.masks.setdefault(m.group(1), here / name)
    return inv


def _pick_ground_truth(tables: list[Path]) -> tuple[Path, str, list[tuple[int, dict]]] | None:
    """The test ground-truth table among the ISIC2018_Task3_Test_* files (other tables are ignored)."""
    recognised = []
    for path in tables:
        header, rows = _read_table(path)
        cols = {h.lower() for h in header}
        if {c.lower() for c in ONEHOT_COLUMNS} <= cols:
            recognised.append((path, "onehot", header, rows))
        elif set(REQUIRED_COLUMNS) <= cols:
            recognised.append((path, "ham", header, rows))
    if not recognised:
        return None
    # Prefer a file that says it is the ground truth, then the HAM format (it has lesion ids).
    recognised.sort(key=lambda t: ("groundtruth" not in t[0].name.lower(), t[1] != "ham", str(t[0])))
    path, fmt, header, rows = recognised[0]
    parsed = _parse_ham_rows(path, header, rows) if fmt == "ham" else _parse_onehot_rows(path, header, rows)
    return path, fmt, parsed


def _records(split, parsed, index: dict[str, Path], masks: dict[str, Path], table: Path, where: str):
    records = []
    missing = []
    for line, row in parsed:
        image_id = row["image_id"]
        path = index.get(image_id)
        if path is None:
            missing.append((line, image_id))
            continue
        records.append(
            SourceRecord(
                image_id=image_id,
                lesion_id=row["lesion_id"],
                dx=row["dx"],
                label=CLASSES.index(row["dx"]),
                split=split,
                image_path=path,
                mask_path=masks.get(image_id),
                metadata={k: row[k] for k in METADATA_KEYS},
            )
        )
    if missing:
        line, image_id = missing[0]
        more = f" (and {len(missing) - 1} more images)" if len(missing) > 1 else ""
        raise UserError(
            f"{table}, row {line}: image {image_id} is listed but {image_id}.jpg{more} was not found {where}"
        )
    records.sort(key=lambda r: r.image_id)
    return records


def _fingerprint(metadata_path: Path, ground_truth: Path | None, train, test) -> str:
    h = hashlib.sha256(b"ham10000-source/1\n")
    for table in (metadata_path, ground_truth):
        h.update((hashlib.sha256(table.read_bytes()).hexdigest() if table else "-").encode() + b"\n")
    for rec in [*train, *test]:
        mask = f"{rec.mask_path.name}:{rec.mask_path.stat().st_size}" if rec.mask_path else "-"
        h.update(f"{rec.split}:{rec.image_path.name}:{rec.image_path.stat().st_size}:{mask}\n".encode())
    return h.hexdigest()


# --- public API -------------------------------------------------------------------------------


def load_source(path: str | os.PathLike, *, report: bool = True) -> Source:
    """Load a HAM10000 folder in the Dataverse layout; raise ``UserError`` naming any bad file or row.

    With ``report`` (default), a per-class comparison with the published counts is printed to
    stderr when the folder looks like the full data set.
    """
    root = Path(path)
    if not root.exists():
        raise UserError(f"{root}: no such folder")
    if not root.is_dir():
        raise UserError(f"{root}: not a folder (expected the HAM10000 Dataverse layout)")
    inv = _scan(root)
    if inv.n_files == 0:
        raise UserError(f"{root}: empty folder (expected the HAM10000 Dataverse layout)")
    if not inv.metadata:
        raise UserError(f"{root}: no {METADATA_STEM} file (with or without .csv/.tab/.txt extension) found")
    # Prefer the shallowest metadata file, so a stray copy deeper down does not win.
    metadata_path = min(inv.metadata, key=lambda p: (len(p.relative_to(root).parts), str(p)))
    header, rows = _read_table(metadata_path)
    parsed = _parse_ham_rows(metadata_path, header, rows)
    zips = sorted(p.name for p in root.glob("*.zip"))
    hint = f"; unpack {', '.join(zips)} first?" if zips else ""
    train = _records(
        "train",
        parsed,
        inv.train_images,
        inv.masks,
        metadata_path,
        f"under {root} (outside {TEST_IMAGES_DIR_PREFIX}/){hint}",
    )

    ground_truth = _pick_ground_truth(inv.test_tables)
    test: list[SourceRecord] = []
    gt_path = gt_format = None
    if ground_truth is not None:
        gt_path, gt_format, gt_rows = ground_truth
        train_ids = {r.image_id for r in train}
        for line, row in gt_rows:
            if row["image_id"] in train_ids:
                raise UserError(
                    f"{gt_path}, row {line}: test image {row['image_id']} is also in {metadata_path.name}"
                )
        test = _records("test", gt_rows, inv.test_images, inv.masks, gt_path, f"in {TEST_IMAGES_DIR_PREFIX}/")
    elif inv.test_images:
        raise UserError(
            f"{root}: {TEST_IMAGES_DIR_PREFIX}/ has images but no test ground truth table "
            f"({TEST_TABLE_PREFIX}_*.csv in HAM metadata or ISIC one-hot format) was found"
        )

    source = Source(
        root=root,
        train=train,
        test=test,
        fingerprint=_fingerprint(metadata_path, gt_path, train, test),
        synthetic=(root / SYNTHETIC_MARKER).is_file(),
        metadata_path=metadata_path,
        ground_truth_path=gt_path,
        ground_truth_format=gt_format,
    )
    if report:
        text = expected_counts_report(source)
        if text:
            print(text, file=sys.stderr)
    return source


def expected_counts_report(source: Source) -> str | None:
    """A comparison with the published per-class counts, or None if the source is clearly a subset."""
    looks_full = {
        split: len(source.records(split)) >= 0.9 * sum(EXPECTED_COUNTS[split].values())
        for split in EXPECTED_COUNTS
    }
    if not any(looks_full.values()):
        return None
    lines = []
    for split, expected in EXPECTED_COUNTS.items():
        if not looks_full[split]:
            continue
        found = source.class_counts(split)
        total_e, total_f = sum(expected.values()), sum(found.values())
        diffs = [f"{c} {found[c]} (expected {expected[c]})" for c in CLASSES if found[c] != expected[c]]
        if not diffs:
            lines.append(f"{split}: {total_f} images, per-class counts match HAM10000/ISIC 2018 ({total_e})")
        else:
            lines.append(f"{split}: {total_f} images (expected {total_e}); differs: " + ", ".join(diffs))
    return "\n".join(lines)


def read_image(rec: SourceRecord, size: tuple[int, int] | None = None):
    """The RGB pixels of ``rec`` (uint8 HxWx3) and, when no resize happened, its JPEG bytes verbatim.

    ``size`` is (W, H). The image is decoded completely, so a truncated or corrupt file raises
    ``UserError`` here (PIL's LOAD_TRUNCATED_IMAGES is deliberately not used).
    """
    import numpy as np
    from PIL import Image, ImageFile

    path = Path(rec.image_path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # someone turned it on globally; we still refuse truncation
        raise UserError(
            f"{path}: PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; refusing to hide truncated images"
        )
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            fmt, mode = im.format, im.mode
            rgb = im.convert("RGB") if mode != "RGB" else im.copy()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UserError(f"{path}: corrupt or truncated image ({exc})") from None
    keep_bytes = fmt == "JPEG" and mode == "RGB"
    if size is not None and tuple(size) != rgb.size:
        w, h = (int(v) for v in size)
        rgb = rgb.resize((w, h), Image.Resampling.LANCZOS)
        keep_bytes = False
    return np.asarray(rgb), (data if keep_bytes else None)


def _image_size(path: Path) -> tuple[int, int]:
    """(W, H) of an image from its header only."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except OSError as exc:
        raise UserError(f"{path}: corrupt or unreadable image ({exc})") from None


def read_mask(rec: SourceRecord, image_shape, rgb=None):
    """The lesion mask of ``rec`` as uint8 0/1 of shape ``image_shape[:2]`` and its origin.

    Returns ``(mask, "provided")`` for a segmentation PNG (resized nearest-neighbour when the
    image was resized; a PNG whose size differs from the *source* image is a ``UserError``), or
    ``(mask, "auto")`` from ``generator.sources.segmentation.segment_lesion`` when there is none. Pass the
    already decoded ``rgb`` to avoid decoding the image a second time.
    """
    import numpy as np

    h, w = int(image_shape[0]), int(image_shape[1])
    if rec.mask_path is not None:
        from PIL import Image

        mask_path = Path(rec.mask_path)
        try:
            with Image.open(mask_path) as im:
                im.load()
                mask_img = im.convert("L")
        except (OSError, SyntaxError, ValueError) as exc:
            raise UserError(f"{mask_path}: corrupt or unreadable mask ({exc})") from None
        src_w, src_h = _image_size(Path(rec.image_path))
        if mask_img.size != (src_w, src_h):
            raise UserError(
                f"{mask_path}: mask is {mask_img.size[0]}x{mask_img.size[1]} but image "
                f"{Path(rec.image_path).name} is {src_w}x{src_h}"
            )
        if mask_img.size != (w, h):
            mask_img = mask_img.resize((w, h), Image.Resampling.NEAREST)
        return (np.asarray(mask_img) > 127).astype(np.uint8), "provided"

    from .segmentation import segment_lesion

    if rgb is None:
        rgb, _ = read_image(rec, size=(w, h))
    elif tuple(rgb.shape[:2]) != (h, w):
        raise ValueError(f"rgb shape {rgb.shape[:2]} does not match image_shape {(h, w)}")
    return segment_lesion(rgb), "auto"
