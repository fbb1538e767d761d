"""The ``ham10000`` adapter: the Harvard Dataverse layout of HAM10000 (doi:10.7910/DVN/DBW86T).

Layout (folders may be nested anywhere below the root; everything is found by name)::

    HAM10000_metadata[.csv|.tab|.txt]          lesion_id,image_id,dx,dx_type,age,sex,localization,dataset
    .../ISIC_0024306.jpg ...                    training images (e.g. HAM10000_images_part_1/, _part_2/)
    HAM10000_segmentations_lesion_tschandl/ISIC_0024306_segmentation.png   0/255 lesion masks
    ISIC2018_Task3_Test_Images/ISIC_*.jpg       test images (no masks)
    ISIC2018_Task3_Test_*.csv                   test ground truth: HAM metadata columns, or the ISIC
                                                challenge one-hot table image,MEL,NV,BCC,AKIEC,BKL,DF,VASC

Every problem with the input raises ``UserError`` naming the file (and row) at fault. Tables are
read by ``tables``, the folder is walked and fingerprinted by ``scan``, the names are in ``layout``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .. import CLASSES
from ..errors import UserError
from ..images import opened_image

# The layout's names stay importable from here: synth writes the layout that this module reads.
from .layout import EXPECTED_COUNTS as EXPECTED_COUNTS
from .layout import MASK_DIR as MASK_DIR
from .layout import METADATA_KEYS, METADATA_STEM, SYNTHETIC_MARKER, TEST_IMAGES_DIR_PREFIX, TEST_TABLE_PREFIX
from .layout import METADATA_NAME as METADATA_NAME
from .layout import ONEHOT_COLUMNS as ONEHOT_COLUMNS
from .layout import REQUIRED_COLUMNS as REQUIRED_COLUMNS
from .layout import TEST_GROUND_TRUTH_NAME as TEST_GROUND_TRUTH_NAME
from .layout import TEST_IMAGES_DIR as TEST_IMAGES_DIR
from .layout import TRAIN_IMAGE_DIRS as TRAIN_IMAGE_DIRS
from .scan import ContentDigests, fingerprint, scan
from .tables import parse_ham_rows, pick_ground_truth, read_table

logger = logging.getLogger(__name__)


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
    image_sha256: str = ""  # of the bytes fingerprinted; read_image refuses other bytes ("" = unchecked)
    mask_sha256: str = ""


@dataclass
class Source:
    """A loaded HAM10000 folder: training and test records plus a fingerprint of their content."""

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


# --- records ---------------------------------------------------------------------------------


def _records(
    split,
    parsed,
    index: dict[str, Path],
    masks: dict[str, Path],
    table: Path,
    where: str,
    digest: ContentDigests,
):
    records = []
    missing = []
    for line, row in parsed:
        image_id = row["image_id"]
        path = index.get(image_id)
        if path is None:
            missing.append((line, image_id))
            continue
        mask = masks.get(image_id)
        records.append(
            SourceRecord(
                image_id=image_id,
                lesion_id=row["lesion_id"],
                dx=row["dx"],
                label=CLASSES.index(row["dx"]),
                split=split,
                image_path=path,
                mask_path=mask,
                metadata={k: row[k] for k in METADATA_KEYS},
                image_sha256=digest(path),
                mask_sha256=digest(mask) if mask else "",
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


# --- public API -------------------------------------------------------------------------------


def load_source(path: str | os.PathLike, *, report: bool = True) -> Source:
    """Load a HAM10000 folder in the Dataverse layout; raise ``UserError`` naming any bad file or row.

    Every file the build reads is hashed once here (``Source.fingerprint`` is of their content).
    With ``report`` (default), a per-class comparison with the published counts is logged when the
    folder looks like the full data set.
    """
    root = Path(path)
    if not root.exists():
        raise UserError(f"{root}: no such folder")
    if not root.is_dir():
        raise UserError(f"{root}: not a folder (expected the HAM10000 Dataverse layout)")
    digest = ContentDigests()
    inv = scan(root, digest)
    if inv.n_files == 0:
        raise UserError(f"{root}: empty folder (expected the HAM10000 Dataverse layout)")
    if not inv.metadata:
        raise UserError(f"{root}: no {METADATA_STEM} file (with or without .csv/.tab/.txt extension) found")
    # Prefer the shallowest metadata file, so a stray copy deeper down does not win.
    metadata_path = min(inv.metadata, key=lambda p: (len(p.relative_to(root).parts), str(p)))
    header, rows = read_table(metadata_path)
    parsed = parse_ham_rows(metadata_path, header, rows)
    zips = sorted(p.name for p in root.glob("*.zip"))
    hint = f"; unpack {', '.join(zips)} first?" if zips else ""
    train = _records(
        "train",
        parsed,
        inv.train_images,
        inv.masks,
        metadata_path,
        f"under {root} (outside {TEST_IMAGES_DIR_PREFIX}/){hint}",
        digest,
    )

    ground_truth = pick_ground_truth(inv.test_tables)
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
        test = _records(
            "test", gt_rows, inv.test_images, inv.masks, gt_path, f"in {TEST_IMAGES_DIR_PREFIX}/", digest
        )
    elif inv.test_images:
        raise UserError(
            f"{root}: {TEST_IMAGES_DIR_PREFIX}/ has images but no test ground truth table "
            f"({TEST_TABLE_PREFIX}_*.csv in HAM metadata or ISIC one-hot format) was found"
        )

    synthetic = (root / SYNTHETIC_MARKER).is_file()
    source = Source(
        root=root,
        train=train,
        test=test,
        fingerprint=fingerprint((metadata_path, gt_path), [*train, *test], synthetic, digest),
        synthetic=synthetic,
        metadata_path=metadata_path,
        ground_truth_path=gt_path,
        ground_truth_format=gt_format,
    )
    if report:
        text = expected_counts_report(source)
        for text_line in text.splitlines() if text else ():
            logger.info(text_line)
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
    ``UserError`` here (PIL's LOAD_TRUNCATED_IMAGES is deliberately not used); so do bytes other
    than those :func:`load_source` fingerprinted (the file changed since).
    """
    import numpy as np
    from PIL import Image, ImageFile

    path = Path(rec.image_path)
    data = _read_checked(path, rec.image_sha256)
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # someone turned it on globally; we still refuse truncation
        raise UserError(
            f"{path}: PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; refusing to hide truncated images"
        )
    with opened_image(data, path, "corrupt or truncated image") as im:
        im.load()
        fmt, mode = im.format, im.mode
        rgb = im.convert("RGB") if mode != "RGB" else im.copy()
    keep_bytes = fmt == "JPEG" and mode == "RGB"
    if size is not None and tuple(size) != rgb.size:
        w, h = (int(v) for v in size)
        rgb = rgb.resize((w, h), Image.Resampling.LANCZOS)
        keep_bytes = False
    return np.asarray(rgb), (data if keep_bytes else None)


def _read_checked(path: Path, sha256: str) -> bytes:
    """The bytes of ``path``; UserError when they are not the ones fingerprinted (``sha256``, if set)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if sha256 and hashlib.sha256(data).hexdigest() != sha256:
        raise UserError(
            f"{path}: changed since the source folder was read (its content no longer matches the "
            "source fingerprint); run the command again"
        )
    return data


def _image_size(path: Path) -> tuple[int, int]:
    """(W, H) of an image from its header only."""
    with opened_image(path, path, "corrupt or unreadable image") as im:
        return im.size


def read_mask(rec: SourceRecord, image_shape, rgb=None):
    """The lesion mask of ``rec`` as uint8 0/1 of shape ``image_shape[:2]`` and its origin.

    Returns ``(mask, "provided")`` for a segmentation PNG (resized nearest-neighbour when the
    image was resized; a PNG whose size differs from the *source* image is a ``UserError``), or
    ``(mask, "auto")`` from ``generator.sources.segmentation.segment_lesion`` when there is none
    or when it is degenerate (empty or covering the whole image: artefacts are placed against
    the lesion, so a mask that outlines none is no mask). Pass the already decoded ``rgb`` to
    avoid decoding the image a second time.
    """
    import numpy as np

    h, w = int(image_shape[0]), int(image_shape[1])
    if rec.mask_path is not None:
        from PIL import Image

        mask_path = Path(rec.mask_path)
        data = _read_checked(mask_path, rec.mask_sha256)
        with opened_image(data, mask_path, "corrupt or unreadable mask") as im:
            im.load()
            mask_img = im.convert("L")
        src_w, src_h = _image_size(Path(rec.image_path))
        if mask_img.size != (src_w, src_h):
            raise UserError(
                f"{mask_path}: mask is {mask_img.size[0]}x{mask_img.size[1]} but image "
                f"{Path(rec.image_path).name} is {src_w}x{src_h}"
            )
        if mask_img.size != (w, h):
            mask_img = mask_img.resize((w, h), Image.Resampling.NEAREST)
        mask = (np.asarray(mask_img) > 127).astype(np.uint8)
        if mask.any() and not mask.all():
            return mask, "provided"
        logger.debug(f"{mask_path}: {'full' if mask.any() else 'empty'} mask; segmenting automatically")

    from .segmentation import segment_lesion

    if rgb is None:
        rgb, _ = read_image(rec, size=(w, h))
    elif tuple(rgb.shape[:2]) != (h, w):
        raise ValueError(f"rgb shape {rgb.shape[:2]} does not match image_shape {(h, w)}")
    return segment_lesion(rgb), "auto"


def degenerate_mask(rec: SourceRecord, mask_source: str) -> bool:
    """Whether ``read_mask`` replaced ``rec``'s provided mask (empty or full) by an automatic one."""
    return rec.mask_path is not None and mask_source == "auto"
