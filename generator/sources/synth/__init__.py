"""A synthetic stand-in for HAM10000 in the Harvard Dataverse layout (``ham-artefacts synth-ham10000``).

The real images may not be redistributed with the code, so demos and tests use this: dermatoscopy-
like JPEGs whose appearance depends on the diagnosis (colour, border irregularity, texture, size,
vessels), in the same folder layout, metadata format and class proportions as the real data.

Determinism: each lesion's appearance is a function of (seed, lesion_id) and each photograph's
viewing conditions (rotation, zoom, position, hair, illumination, noise) of (seed, image_id), so
the bytes written do not depend on the number of worker processes or the order of work.

Difficulty: on HAM10000, class appearance overlaps: nevi, melanomas and benign keratoses are
confused by experts and models alike, each lesion varies more than the class means differ, while
dermatofibromas and vascular lesions stand apart. With ``difficulty`` d > 0 each lesion's appearance
is drawn toward one of its class's usual confusers (``CONFUSERS``): colour, pattern, border
irregularity, softness and size are interpolated with a weight uniform on [0, d x reach] (reach 1
for nv / mel / bkl, less for the distinct classes). The label never changes. d = 0 is the old,
colour-coded twin; the default preset was chosen by measurement (site/study.md, "Calibration").

Rendering is vectorised numpy/OpenCV: a lesion is painted on its own square canvas (colour plus
opacity) in lesion coordinates, then warped into the photograph, so repeat images of one lesion
show the same lesion rotated, zoomed and shifted, as in real follow-up images.

The package's parts: ``plan`` (which images exist, their lesions and metadata, the difficulty),
``lesion`` (one lesion painted in its own frame), ``photo`` (one photograph); this module writes them
out in the Dataverse layout.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ... import __version__
from ...errors import UserError
from ...sizes import MAX_SIDE, MIN_SIDE, parse_size
from ...userio import refuse_non_folder
from ..ham10000 import MASK_DIR, METADATA_NAME, ONEHOT_COLUMNS, SYNTHETIC_MARKER
from ..ham10000 import REQUIRED_COLUMNS as HAM_COLUMNS
from ..ham10000 import TEST_GROUND_TRUTH_NAME as TEST_GT_NAME
from ..ham10000 import TEST_IMAGES_DIR as TEST_DIR
from ..ham10000 import TRAIN_IMAGE_DIRS as TRAIN_DIRS
from .photo import DEFAULT_SIZE, render_image
from .plan import (
    CONFUSERS,
    DEFAULT_DIFFICULTY,
    DIFFICULTY_PRESETS,
    MIN_PER_CLASS,
    PlannedImage,
    class_counts,
    lesion_overlap,
    plan_dataset,
    resolve_difficulty,
)

__all__ = [
    "CONFUSERS",
    "DEFAULT_DIFFICULTY",
    "DEFAULT_SIZE",
    "DIFFICULTY_PRESETS",
    "MIN_PER_CLASS",
    "PlannedImage",
    "class_counts",
    "lesion_overlap",
    "plan_dataset",
    "render_image",
    "resolve_difficulty",
    "synthesize_ham10000",
]

logger = logging.getLogger(__name__)

JPEG_QUALITY = 90
MAX_SCALE = 10.0
ONEHOT_ORDER = ONEHOT_COLUMNS[1:]


def _encode_jpeg(rgb: np.ndarray) -> bytes:
    import cv2

    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # pragma: no cover
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def _encode_mask_png(mask: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(
        ".png", np.where(mask > 0, 255, 0).astype(np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 6]
    )
    if not ok:  # pragma: no cover
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


# (image, seed, (W, H), difficulty, image path, mask path or None for the test split)
_Job = tuple[PlannedImage, int, tuple[int, int], float, str, str | None]


def _render_and_write(job: _Job) -> str:
    planned, seed, size, difficulty, image_path, mask_path = job
    rgb, mask = render_image(planned, seed, size, difficulty)
    Path(image_path).write_bytes(_encode_jpeg(rgb))
    if mask_path is not None:  # the test set has no segmentations, as in reality
        Path(mask_path).write_bytes(_encode_mask_png(mask))
    return planned.image_id


def _keep_freed_memory() -> None:
    """Ask glibc to reuse freed image-sized buffers instead of returning them to the kernel.

    Every image allocates and frees tens of MB of temporaries; by default glibc maps and unmaps
    them, and the page faults cost about a third of the rendering time. No effect off glibc.
    """
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 64 << 20)  # M_MMAP_THRESHOLD: serve blocks up to 64 MB from the heap
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD: keep up to 256 MB of free heap
    except (OSError, AttributeError):
        pass


def _worker_init() -> None:
    import cv2

    cv2.setNumThreads(1)  # the pool already uses every core
    _keep_freed_memory()


def _marker_text(
    scale: float, seed: int, size: tuple[int, int], test_format: str, difficulty: float, test_scale: float
) -> str:
    return (
        "Synthetic stand-in for HAM10000 written by ham-artefacts synth-ham10000.\n"
        "These are NOT real dermatoscopic images; results on them say nothing about real lesions.\n"
        f"scale={float(scale)!r}\nseed={int(seed)}\nsize={size[0]}x{size[1]}\ntest_format={test_format}\n"
        f"difficulty={float(difficulty)!r}\ntest_scale={float(test_scale)!r}\n"
        f"generator_version={__version__}\n"
    )


def _table_text(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _check_scale(value: float | str, flag: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{flag}: not a number: {value!r}") from None
    if not (0 < value <= MAX_SCALE) or not np.isfinite(value):
        raise UserError(f"{flag}: must be > 0 and <= {MAX_SCALE}, got {value}")
    return value


def synthesize_ham10000(
    out: str | os.PathLike,
    scale: float = 1.0,
    seed: int = 0,
    size: tuple[int, int] | str | None = DEFAULT_SIZE,
    *,
    workers: int = 1,
    test_format: str = "onehot",
    progress: bool = True,
    difficulty: float | str = DEFAULT_DIFFICULTY,
    test_scale: float | None = None,
) -> Path:
    """Write a synthetic HAM10000 in the Dataverse layout to ``out``; return ``out``.

    ``scale`` 1.0 gives 10,015 training and 1,511 test images; ``size`` is (W, H). The test
    ground truth is the ISIC one-hot table (``test_format="onehot"``) or HAM metadata columns
    (``"ham"``). ``difficulty`` (a preset name or a number in [0, 1]) sets how much class appearance
    overlaps; ``test_scale`` sizes the test split apart from the training one (default ``scale``).
    The folder appears complete or not at all (built beside it, then renamed).
    If ``out`` already holds a synthetic set made with the same parameters, it is kept as is.
    """
    from tqdm import tqdm

    scale = _check_scale(scale, "--scale")
    test_scale = scale if test_scale is None else _check_scale(test_scale, "--test-scale")
    difficulty = resolve_difficulty(difficulty)
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise UserError(f"--seed: must be a non-negative integer, got {seed!r}")
    if isinstance(size, str):
        size = parse_size(size)
    if size is None:
        size = DEFAULT_SIZE
    size = (int(size[0]), int(size[1]))
    if not (MIN_SIDE <= size[0] <= MAX_SIDE and MIN_SIDE <= size[1] <= MAX_SIDE):
        raise UserError(
            f"--size: width and height must be between {MIN_SIDE} and {MAX_SIDE}, got {size[0]}x{size[1]}"
        )
    if test_format not in ("onehot", "ham"):
        raise UserError(f"--test-format: expected onehot or ham, got {test_format!r}")
    if int(workers) < 1:
        raise UserError(f"--workers: must be at least 1, got {workers}")

    out = Path(out)
    marker = _marker_text(scale, seed, size, test_format, difficulty, test_scale)
    refuse_non_folder(out)
    if out.exists():
        if (out / SYNTHETIC_MARKER).is_file() and (out / SYNTHETIC_MARKER).read_text() == marker:
            if progress:
                logger.info("%s: synthetic HAM10000 with these parameters already present; kept", out)
            return out
        if any(out.iterdir()):
            raise UserError(f"{out}: exists and is not empty (choose a new folder)")

    planned = plan_dataset(scale, seed, test_scale)
    train = sorted((p for p in planned if p.split == "train"), key=lambda p: p.image_id)
    test = sorted((p for p in planned if p.split == "test"), key=lambda p: p.image_id)
    half = (len(train) + 1) // 2
    part = {p.image_id: TRAIN_DIRS[0] if i < half else TRAIN_DIRS[1] for i, p in enumerate(train)}

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    except OSError as exc:
        raise UserError(f"{out}: cannot create output ({exc.strerror or exc})") from None
    try:
        for name in (*TRAIN_DIRS, MASK_DIR, TEST_DIR):
            (tmp / name).mkdir()
        jobs: list[_Job] = [
            (
                p,
                int(seed),
                size,
                difficulty,
                str(tmp / part[p.image_id] / f"{p.image_id}.jpg"),
                str(tmp / MASK_DIR / f"{p.image_id}_segmentation.png"),
            )
            for p in train
        ]
        jobs += [
            (p, int(seed), size, difficulty, str(tmp / TEST_DIR / f"{p.image_id}.jpg"), None) for p in test
        ]
        bar = tqdm(total=len(jobs), desc="synth-ham10000", unit="img", disable=not progress, leave=False)
        if int(workers) == 1:
            _keep_freed_memory()
            for job in jobs:
                _render_and_write(job)
                bar.update()
        else:
            import multiprocessing

            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(int(workers), initializer=_worker_init) as pool:
                for _ in pool.imap_unordered(_render_and_write, jobs, chunksize=16):
                    bar.update()
        bar.close()

        # Metadata grouped by diagnosis, then lesion, like the published file.
        meta_rows = [
            (p.lesion_id, p.image_id, p.dx, *p.metadata)
            for p in sorted(train, key=lambda p: (p.dx, p.lesion_id, p.image_id))
        ]
        (tmp / METADATA_NAME).write_text(_table_text(HAM_COLUMNS, meta_rows), encoding="utf-8")
        if test_format == "onehot":
            gt_rows = [
                (p.image_id, *("1.0" if p.dx == c.lower() else "0.0" for c in ONEHOT_ORDER)) for p in test
            ]
            gt_text = _table_text(("image", *ONEHOT_ORDER), gt_rows)
        else:
            gt_text = _table_text(HAM_COLUMNS, [(p.lesion_id, p.image_id, p.dx, *p.metadata) for p in test])
        (tmp / TEST_GT_NAME).write_text(gt_text, encoding="utf-8")
        (tmp / SYNTHETIC_MARKER).write_text(marker, encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
