"""Decoding one stored row at a decode size: the one decode path of :class:`training.data.datasets.HAMArtefacts`.

The bytes come from ``generator.variants.store.VariantReader`` (the only module that knows the file
layout); this module turns them into pixels at the resolution the training loop asks for.
"""

from __future__ import annotations

import io

import numpy as np

from generator.variants.store import decode_png_stored


def jpeg_draft_factor(width: int, height: int, size) -> int:
    """The DCT scale denominator (1, 2, 4 or 8) Pillow's ``draft`` picks for an image of
    ``width`` x ``height`` asked to cover ``size`` (W, H).

    An image smaller than ``size`` gets 1: it is decoded at full size and the transform upscales it.
    """
    scale = min(width // int(size[0]), height // int(size[1]))
    return next((s for s in (8, 4, 2) if scale >= s), 1)


def reduce_like_jpeg_draft(array: np.ndarray, size) -> np.ndarray:
    """Shrink HxWx3 ``array`` as a JPEG draft would have (ceil(W/s) x ceil(H/s), s from
    :func:`jpeg_draft_factor` of the original size), by area averaging; arrays already at that size,
    or needing no reduction, are returned as they are."""
    height, width = array.shape[:2]
    factor = jpeg_draft_factor(width, height, size)
    if factor == 1:
        return array
    import cv2

    return cv2.resize(array, (-(-width // factor), -(-height // factor)), interpolation=cv2.INTER_AREA)


def decode_row(data, decode_size=None) -> np.ndarray:
    """uint8 HxWx3 pixels (writable) of one stored image (JPEG or PNG bytes).

    ``decode_size`` (W, H): decode at the reduced size that still covers it: JPEG rows at a reduced
    DCT scale (Pillow ``draft``, skipping most of the decoding work), other rows shrunk by the same
    factor (area averaging), so that clean and artefact rows of one variant always arrive at the
    same resolution. None: full size.
    """
    array = decode_png_stored(data)  # artefact rows (stored PNG): a copy of the deflate blocks
    drafted = False
    if array is None:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            if decode_size is not None and im.format == "JPEG":
                im.draft("RGB", tuple(decode_size))  # decode at a reduced DCT scale
                drafted = True
            array = np.array(im.convert("RGB"))  # writable (torch warns on read-only buffers)
    if decode_size is not None and not drafted:
        # other rows get the very same reduction, so that a variant never mixes resolutions
        # (artefact rows are PNG, clean rows JPEG: a mix would be a shortcut cue for the model)
        array = reduce_like_jpeg_draft(array, decode_size)
    return array


def mask_at(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """HxW ``mask`` at ``shape`` (H, W), nearest neighbour (a reduced decode shrinks the image only)."""
    if mask.shape != shape:
        from PIL import Image

        with Image.fromarray(mask) as m:
            mask = np.array(m.resize((shape[1], shape[0]), Image.Resampling.NEAREST))
    return np.ascontiguousarray(mask)
