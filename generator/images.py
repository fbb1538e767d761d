"""Reading and normalising images and lesion masks (RGB uint8 images, boolean masks).

Every image file is opened through :func:`opened_image`: a file that does not decode is one UserError
naming it, and so is one past Pillow's decompression-bomb limit (more than twice
``PIL.Image.MAX_IMAGE_PIXELS``, 179 megapixels by default). Between once and twice the limit the
image is decoded, with one logged warning instead of Pillow's two-line DecompressionBombWarning.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import UserError

if TYPE_CHECKING:
    from PIL import Image as PILImage

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def opened_image(
    source: bytes | str | os.PathLike, name: str | os.PathLike, problem: str = "not a readable image"
) -> Iterator[PILImage.Image]:
    """``PIL.Image.open(source)`` (bytes or a path) for the block; a decoding failure inside the block
    (opening, ``load()``, ``convert()``...) is ``UserError("{name}: {problem} (...)")``."""
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
                yield im
        except Image.DecompressionBombError as exc:
            raise UserError(
                f"{name}: {exc} (Pillow's decompression-bomb limit is twice PIL.Image.MAX_IMAGE_PIXELS; "
                "raise it if the image is genuine)"
            ) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise UserError(f"{name}: {problem} ({exc})") from None
    for warning in caught:
        if issubclass(warning.category, Image.DecompressionBombWarning):
            logger.warning(f"{name}: {warning.message} (decoding it anyway)")
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def as_rgb(image: np.ndarray, name: str = "image") -> np.ndarray:
    """``image`` as a contiguous uint8 HxWx3 array: grayscale is repeated, an alpha channel dropped."""
    array = np.asarray(image)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        if np.issubdtype(array.dtype, np.floating) and array.size and float(np.nanmax(array)) <= 1.0:
            array = array * 255.0
        array = np.clip(np.nan_to_num(array), 0, 255).astype(np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise UserError(
            f"{name}: expected a grayscale, RGB or RGBA image, got an array of shape {array.shape}"
        )
    if array.shape[2] in (1, 2):  # gray or gray+alpha
        array = np.repeat(array[:, :, :1], 3, axis=2)
    elif array.shape[2] == 4:
        array = array[:, :, :3]
    return np.ascontiguousarray(array)


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 HxWx3 (grayscale and RGBA are converted)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such image file")
    with opened_image(path, path) as img:
        img.load()
        usable = (
            img
            if img.mode in ("L", "RGB", "RGBA", "LA")
            else img.convert("RGBA" if "A" in img.getbands() else "RGB")
        )
        array = np.asarray(usable)
    return as_rgb(array, name=str(path))


def mask_to_bool(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    """A 0/1 or 0/255 mask (any integer/bool dtype, optionally with channels) as a boolean HxW array."""
    array = np.asarray(mask)
    if array.ndim == 3:
        array = array[:, :, 0]
    if array.ndim != 2:
        raise UserError(f"{name}: expected a 2-D mask, got an array of shape {array.shape}")
    if array.dtype == bool:
        return array
    return array != 0  # 0/1 and 0/255 masks alike: any non-zero value is lesion


def check_mask(
    mask: np.ndarray | None, image_shape: tuple[int, ...], name: str = "mask"
) -> np.ndarray | None:
    """Validate and normalise a lesion mask for an image of ``image_shape``; None stays None."""
    if mask is None:
        return None
    boolean = mask_to_bool(mask, name)
    height, width = int(image_shape[0]), int(image_shape[1])
    if boolean.shape != (height, width):
        raise UserError(
            f"{name}: size {boolean.shape[1]}x{boolean.shape[0]} does not match the image size {width}x{height}"
        )
    return boolean


def load_mask(path: str | Path, image_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read a 0/1 or 0/255 mask file as a boolean HxW array; checks its size against ``image_shape``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such mask file")
    with opened_image(path, path, "not a readable mask image") as img:
        array = np.asarray(img.convert("L") if img.mode not in ("L", "1", "I", "P") else img)
    if image_shape is not None:
        checked = check_mask(array, image_shape, name=str(path))
        assert checked is not None  # check_mask keeps None only for None
        return checked
    return mask_to_bool(array, name=str(path))


def encode_png(array: np.ndarray, compress_level: int | None = None) -> bytes:
    """PNG bytes of an RGB uint8 image or a boolean/uint8 mask (masks are written 0/255).

    ``compress_level`` (0-9) trades size for speed; None is zlib's default (6). The variant files
    store masks at level 1 (``generator.variants.store.encode_png``). Deterministic for a given zlib.
    """
    from PIL import Image

    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    options = {} if compress_level is None else {"compress_level": compress_level}
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG", **options)
    return buffer.getvalue()


def save_png(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as a PNG atomically (never a half-written file)."""
    from .atomic import write_bytes_atomic

    write_bytes_atomic(path, encode_png(array))
