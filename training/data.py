"""A torch Dataset over one variant file, read through generator.store (the only module that knows the layout)."""

from __future__ import annotations

import io
import os

import numpy as np
import torch
from torch.utils.data import Dataset

from generator.store import VariantReader

from .transforms import box_from_mask

JPEG_MAGIC = b"\xff\xd8"


class HDF5VariantDataset(Dataset):
    """Rows of one ``<variant>.h5`` file as dicts::

        image       float32 CxHxW in [0, 1]
        label       int (index into generator.CLASSES)
        lesion_mask uint8 HxW, 0/1                                         (with_masks only)
        box         float32 (4,) x0, y0, x1, y1 around the lesion mask (after the transform; with_masks only)
        image_id    str
        index       int (row in the file, used to merge predictions across DDP ranks)

    ``indices`` selects rows (a fold); ``transform`` is a :class:`training.transforms.JointTransform`
    (or any callable ``(image uint8 CxHxW, mask HxW or None) -> (image float, mask, box)``).

    ``with_masks=False`` skips the lesion mask and its box: the classifier and every prediction pass
    use the image alone, and decoding the mask PNG plus moving it through the geometric transforms
    cost more than the image itself (benchmarks/loader.py).

    The HDF5 handle is opened lazily inside whichever process reads (VariantReader re-opens after a
    fork), so DataLoader workers never share a handle inherited from the parent.

    ``decode_size`` (W, H): decode JPEG rows at a reduced DCT scale that still covers this size
    (PIL ``draft``), which skips most of the decoding work for small training resolutions. Otherwise
    images are decoded by torchvision.io straight from the stored bytes into a uint8 tensor.
    """

    def __init__(self, path: str | os.PathLike, indices=None, transform=None, decode_size=None,
                 with_masks: bool = True):
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

    def _decode_image(self, data: bytes) -> torch.Tensor:
        """uint8 CxHxW. The reduced-size path keeps PIL's HxWxC buffer (a channels-last view, no copy):
        torch's uint8 antialiased resize is fastest on that layout."""
        if self.decode_size is not None and data[:2] == JPEG_MAGIC:
            from PIL import Image

            with Image.open(io.BytesIO(data)) as im:
                im.draft("RGB", tuple(self.decode_size))
                array = np.array(im.convert("RGB"))  # writable (torch warns on read-only buffers)
            return torch.from_numpy(array).permute(2, 0, 1)
        from torchvision.io import ImageReadMode, decode_image

        return decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)

    def _lesion_mask(self, row: int, shape: tuple[int, int]) -> torch.Tensor:
        mask = self.reader.lesion_mask(row)
        if mask.shape != shape:
            from PIL import Image

            with Image.fromarray(mask) as m:
                mask = np.array(m.resize((shape[1], shape[0]), Image.NEAREST))
        return torch.from_numpy(np.ascontiguousarray(mask))

    def __getitem__(self, i: int) -> dict:
        row = int(self.indices[i])
        image = self._decode_image(self.reader.image_bytes(row))
        mask = self._lesion_mask(row, tuple(image.shape[-2:])) if self.with_masks else None
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
        **({"lesion_mask": torch.stack([b["lesion_mask"] for b in batch]),
            "box": torch.stack([b["box"] for b in batch])} if "lesion_mask" in batch[0] else {}),
    }


def worker_init_fn(worker_id: int) -> None:
    """Per-worker setup for DataLoader.

    Randomness needs nothing here: the transforms draw from torch's per-worker generator, which the
    DataLoader seeds from its own (explicitly seeded) ``generator``, and nothing in the data path uses
    numpy's global RNG. One intra-op thread per worker keeps workers from oversubscribing the cores.
    """
    torch.set_num_threads(1)
