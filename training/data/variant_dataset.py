"""A torch Dataset over one variant file, read through generator.variants.store (the only module that knows the layout)."""

from __future__ import annotations

import io
import os

import numpy as np
import torch
from torch.utils.data import Dataset

from generator.variants.store import VariantReader, decode_png_stored
from training.data.transforms import box_from_mask


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


class HDF5VariantDataset(Dataset):
    """Rows of one ``<variant>.h5`` file as dicts::

        image       float32 CxHxW in [0, 1] (uint8 0-255 with a transform made with float_output=False)
        label       int (index into generator.CLASSES)
        lesion_mask uint8 HxW, 0/1                                         (with_masks only)
        box         float32 (4,) x0, y0, x1, y1 around the lesion mask (after the transform; with_masks only)
        image_id    str
        index       int (row in the file, used to merge predictions across DDP ranks)

    ``indices`` selects rows (a fold); ``transform`` is a :class:`training.data.transforms.JointTransform`
    (or any callable ``(image uint8 CxHxW, mask HxW or None) -> (image float, mask, box)``).

    ``with_masks=False`` skips the lesion mask and its box: the classifier and every prediction pass
    use the image alone, and decoding the mask PNG plus moving it through the geometric transforms
    cost more than the image itself (benchmarks/loader.py).

    The HDF5 handle is opened lazily inside whichever process reads (VariantReader re-opens after a
    fork), so DataLoader workers never share a handle inherited from the parent.

    ``decode_size`` (W, H): decode every row at the reduced size that still covers this size: JPEG
    rows at a reduced DCT scale (Pillow ``draft``, skipping most of the decoding work), other rows
    shrunk by the same factor (area averaging), so that clean and artefact rows of one variant always
    arrive at the same resolution. Without it, rows are decoded at full size.
    """

    def __init__(
        self, path: str | os.PathLike, indices=None, transform=None, decode_size=None, with_masks: bool = True
    ):
        self.reader = VariantReader(path)
        self.indices = np.arange(len(self.reader)) if indices is None else np.asarray(indices, dtype=np.int64)
        self.transform = transform
        self.decode_size = decode_size
        self.with_masks = with_masks

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def labels(self) -> np.ndarray:
        return self.reader.labels[self.indices]

    @property
    def image_ids(self) -> list[str]:
        return [self.reader.image_ids[i] for i in self.indices]

    def _decode_image(self, data) -> torch.Tensor:
        """uint8 CxHxW, a channels-last view of the decoded HxWxC buffer (no copy): torch's uint8
        antialiased resize, the first training transform, is several times faster on that layout."""
        array = decode_png_stored(data)  # artefact rows (stored PNG): a copy of the deflate blocks
        drafted = False
        if array is None:
            from PIL import Image

            with Image.open(io.BytesIO(data)) as im:
                if self.decode_size is not None and im.format == "JPEG":
                    im.draft("RGB", tuple(self.decode_size))  # decode at a reduced DCT scale
                    drafted = True
                array = np.array(im.convert("RGB"))  # writable (torch warns on read-only buffers)
        if self.decode_size is not None and not drafted:
            # other rows get the very same reduction, so that a variant never mixes resolutions
            # (artefact rows are PNG, clean rows JPEG: a mix would be a shortcut cue for the model)
            array = reduce_like_jpeg_draft(array, self.decode_size)
        return torch.from_numpy(array).permute(2, 0, 1)

    def _lesion_mask(self, row: int, shape: tuple[int, int]) -> torch.Tensor:
        mask = self.reader.lesion_mask(row)
        if mask.shape != shape:
            from PIL import Image

            with Image.fromarray(mask) as m:
                mask = np.array(m.resize((shape[1], shape[0]), Image.Resampling.NEAREST))
        return torch.from_numpy(np.ascontiguousarray(mask))

    def __getitem__(self, i: int) -> dict:
        try:
            return self._item(i)
        except StopIteration as exc:
            # A StopIteration escaping __getitem__ would end the DataLoader's iteration silently
            # (an epoch over zero images); make it the error it is.
            raise RuntimeError(f"{self.reader.path}: reading row {i} raised StopIteration") from exc

    def _item(self, i: int) -> dict:
        row = int(self.indices[i])
        image = self._decode_image(self.reader.image_buffer(row))
        height, width = image.shape[-2:]
        mask = self._lesion_mask(row, (int(height), int(width))) if self.with_masks else None
        if self.transform is not None:
            image, mask, box = self.transform(image, mask)
        else:
            image = image.float().div_(255)
            box = box_from_mask(mask) if mask is not None else None
        item = {
            "image": image,
            "label": int(self.reader.labels[row]),
            "image_id": self.reader.image_ids[row],
            "index": row,
        }
        if self.with_masks:
            item.update(lesion_mask=mask, box=box.float())
        return item


def collate(batch: list[dict]) -> dict:
    """Stack a batch (all images share one size after the transforms); masks and boxes when present."""
    return {
        "image": torch.stack([b["image"] for b in batch]),
        "label": torch.tensor([b["label"] for b in batch], dtype=torch.int64),
        "image_id": [b["image_id"] for b in batch],
        "index": torch.tensor([b["index"] for b in batch], dtype=torch.int64),
        **(
            {
                "lesion_mask": torch.stack([b["lesion_mask"] for b in batch]),
                "box": torch.stack([b["box"] for b in batch]),
            }
            if "lesion_mask" in batch[0]
            else {}
        ),
    }


def worker_init_fn(worker_id: int) -> None:
    """Per-worker setup for DataLoader.

    Randomness needs nothing here: the transforms draw from torch's per-worker generator, which the
    DataLoader seeds from its own (explicitly seeded) ``generator``, and nothing in the data path uses
    numpy's global RNG. One intra-op thread per worker keeps workers from oversubscribing the cores.
    (OpenCV's thread count is left alone: ``cv2.setNumThreads`` in a forked worker can deadlock, and
    its kernels here run on 224 px images, below OpenCV's threshold for going parallel.)
    """
    torch.set_num_threads(1)
