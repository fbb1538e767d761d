"""A torch Dataset over one variant file, read through generator.store (the only module that knows the layout)."""

from __future__ import annotations

import io
import os

import numpy as np
import torch
from torch.utils.data import Dataset

from generator.store import VariantReader

from .transforms import box_from_mask


class HDF5VariantDataset(Dataset):
    """Rows of one ``<variant>.h5`` file as dicts::

        image       float32 CxHxW in [0, 1]
        label       int (index into generator.CLASSES)
        lesion_mask uint8 HxW, 0/1
        box         float32 (4,) x0, y0, x1, y1 around the lesion mask (after the transform)
        image_id    str
        index       int (row in the file, used to merge predictions across DDP ranks)

    ``indices`` selects rows (a fold); ``transform`` is a :class:`training.transforms.JointTransform`
    (or any callable ``(image uint8 CxHxW, mask HxW) -> (image float, mask, box)``).

    The HDF5 handle is opened lazily inside whichever process reads (VariantReader re-opens after a
    fork), so DataLoader workers never share a handle inherited from the parent.

    ``decode_size`` (W, H): decode JPEG rows at a reduced DCT scale that still covers this size
    (PIL ``draft``), which skips most of the decoding work for small training resolutions.
    """

    def __init__(self, path: str | os.PathLike, indices=None, transform=None, decode_size=None):
        self.reader = VariantReader(path)
        self.indices = np.arange(len(self.reader)) if indices is None else np.asarray(indices, dtype=np.int64)
        self.transform = transform
        self.decode_size = decode_size

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def labels(self) -> np.ndarray:
        return self.reader.labels[self.indices]

    @property
    def image_ids(self) -> list[str]:
        return [self.reader.image_ids[i] for i in self.indices]

    def _decode(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        from PIL import Image

        with Image.open(io.BytesIO(self.reader.image_bytes(row))) as im:
            if self.decode_size is not None and im.format == "JPEG":
                im.draft("RGB", tuple(self.decode_size))
            image = np.array(im.convert("RGB"))
        mask = self.reader.lesion_mask(row)
        if mask.shape != image.shape[:2]:
            with Image.fromarray(mask) as m:
                mask = np.array(m.resize((image.shape[1], image.shape[0]), Image.NEAREST))
        return image, mask

    def __getitem__(self, i: int) -> dict:
        row = int(self.indices[i])
        image, mask = self._decode(row)
        image = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        mask = torch.from_numpy(np.ascontiguousarray(mask))
        if self.transform is not None:
            image, mask, box = self.transform(image, mask)
        else:
            image = image.float().div_(255)
            box = box_from_mask(mask)
        return {
            "image": image,
            "label": int(self.reader.labels[row]),
            "lesion_mask": mask,
            "box": box.float(),
            "image_id": self.reader.image_ids[row],
            "index": row,
        }


def collate(batch: list[dict]) -> dict:
    """Stack a batch (all images share one size after the transforms)."""
    return {
        "image": torch.stack([b["image"] for b in batch]),
        "label": torch.tensor([b["label"] for b in batch], dtype=torch.int64),
        "lesion_mask": torch.stack([b["lesion_mask"] for b in batch]),
        "box": torch.stack([b["box"] for b in batch]),
        "image_id": [b["image_id"] for b in batch],
        "index": torch.tensor([b["index"] for b in batch], dtype=torch.int64),
    }


def worker_init_fn(worker_id: int) -> None:
    """Per-worker setup for DataLoader.

    Randomness needs nothing here: the transforms draw from torch's per-worker generator, which the
    DataLoader seeds from its own (explicitly seeded) ``generator``, and nothing in the data path uses
    numpy's global RNG. One intra-op thread per worker keeps workers from oversubscribing the cores.
    """
    torch.set_num_threads(1)
