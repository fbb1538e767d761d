"""``HAMArtefacts``: one variant file as a torchvision-style Dataset, in the spirit of MedMNIST.

    >>> from training.datasets import HAMArtefacts
    >>> ds = HAMArtefacts("data/", "test_all", download=True)   # fetch + SHA-256 check
    >>> image, label = ds[0]                  # tv_tensors.Image uint8 3xHxW, int
    >>> ds = HAMArtefacts("data/", "test_all", target_types=("lesion_mask", "box"), transforms=pipeline)
    >>> image, (mask, box) = ds[0]            # a joint v2 pipeline moved all three together
    >>> ds.info["licence"], ds.info["artefact_counts"]
    >>> ds.montage(16).save("grid.png")

Files are opened through their manifest entry only (``generator.variants.verified``), read through
``generator.variants.store.VariantReader`` (the one module that knows the layout), and every image through :func:`training.data.decode.decode_row`. Training, prediction and
Grad-CAM read their images through this class too. Downloading, ``info`` and ``montage`` need no
torch; items need torchvision (they are tv_tensors).
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

try:  # torch is optional for downloading, describing and viewing the data
    from torch.utils.data import Dataset as _DatasetBase
except ImportError:  # pragma: no cover - exercised only without torch
    _DatasetBase = object  # type: ignore[misc,assignment]  # a plain base class when torch is absent

from generator.errors import UserError
from generator.variants.manifest import MANIFEST_NAME
from training.data.decode import decode_row, mask_at

DOWNLOAD_LOCK_WAIT_S = 3600.0
TARGET_TYPES = ("label", "lesion_mask", "artefact_mask", "box", "meta")
"""What an item's target can hold, as ``target_types`` names it:

label          int, index into ``classes`` (``generator.CLASSES``)
lesion_mask    ``tv_tensors.Mask`` uint8 0/1 HxW, at the image's size
artefact_mask  ``tv_tensors.Mask`` uint8 0/1 HxW, the pixels the artefact changed (empty on clean rows)
box            ``tv_tensors.BoundingBoxes`` (1, 4) XYXY around the lesion mask, canvas = the image's size
meta           dict: index (row in the file), image_id, lesion_id, has_artefact, kind ("" when clean)
"""


def _target_types(target_types) -> tuple[str, ...]:
    names = (target_types,) if isinstance(target_types, str) else target_types
    try:
        names = tuple(names)
    except TypeError:
        raise UserError(
            f"target_types: expected a name or a sequence of names, got {target_types!r}"
        ) from None
    unknown = [name for name in names if name not in TARGET_TYPES]
    if unknown or not names:
        got = f"unknown {unknown[0]!r}" if unknown else "none given"
        raise UserError(f"target_types: {got}; valid: {', '.join(TARGET_TYPES)}")
    return names


def _decode_size(decode_size) -> tuple[int, int] | None:
    if decode_size is None:
        return None
    size = (decode_size, decode_size) if isinstance(decode_size, numbers.Integral) else decode_size
    if (
        isinstance(size, Sequence)
        and len(size) == 2
        and all(isinstance(side, numbers.Integral) and not isinstance(side, bool) for side in size)
        and min(int(side) for side in size) > 0
    ):
        return int(size[0]), int(size[1])
    raise UserError(f"decode_size: expected None, a positive int or (width, height), got {decode_size!r}")


class HAMArtefacts(_DatasetBase):
    """The rows of ``<root>/<variant>.h5``: ``ds[i]`` is ``(image, target)``, as torchvision's datasets.

    image:            ``tv_tensors.Image``, uint8 3xHxW (a channels-last view of the decoded pixels;
                      ``v2.ToPILImage()`` for a PIL image).
    root:             folder holding the variant files (created by ``download=True``).
    variant:          e.g. ``"train_none"``, ``"test_all"``, ``"test_40"`` (``ham-artefacts list``).
    target_types:     one of :data:`TARGET_TYPES` (the target is that value) or a sequence of them
                      (a tuple in that order), as torchvision's CelebA.
    transforms:       a joint callable ``(image, target) -> (image, target)``, e.g. a v2 pipeline:
                      geometric transforms move the image, masks and box together.
    transform:        applied to the image; ``target_transform``: applied to the target (either
                      these or ``transforms``, not both).
    decode_size:      (W, H) or an int: decode every row at the reduced size that still covers it
                      (:func:`training.data.decode.decode_row`); masks and box follow the image.
                      None: full size.
    download:         fetch the file if it is missing or does not match its SHA-256.
    manifest:         where to download from: a manifest path, folder or URL (http/https/file).
                      Default: the manifest packaged with the code (``data_manifest.json``).

    The file is read only through ``root/manifest.json`` (written by ``generate`` and ``fetch``): its
    size, SHA-256, row count and class counts must be the ones listed, else a UserError naming the
    file and what differs (:func:`generator.variants.verified.open_checked`; the SHA-256 is computed
    on the first open and then trusted while the file's size and mtime stand).

    The HDF5 handle is opened lazily inside whichever process reads (VariantReader re-opens after a
    fork), so DataLoader workers never share a handle inherited from the parent.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        variant: str,
        target_types: str | Sequence[str] = "label",
        transforms=None,
        transform=None,
        target_transform=None,
        decode_size: int | tuple[int, int] | None = None,
        download: bool = False,
        manifest: str | os.PathLike | dict | None = None,
        progress: bool = True,
    ):
        if not isinstance(variant, str) or not variant:
            raise UserError(f"variant: must be a non-empty string, got {variant!r}")
        if transforms is not None and (transform is not None or target_transform is not None):
            raise UserError("transforms: pass either transforms or transform/target_transform, not both")
        self.root = Path(root).expanduser()
        self.variant = variant
        self.target_types = _target_types(target_types)
        self._single_target = isinstance(target_types, str) or len(self.target_types) == 1
        self.transforms = transforms
        self.transform = transform
        self.target_transform = target_transform
        self.decode_size = _decode_size(decode_size)
        self.manifest = manifest
        self.progress = progress
        if download:
            self.download()
        path = self.root / f"{variant}.h5"
        if not path.is_file():
            raise UserError(
                f"{path}: variant file not found; pass download=True or run "
                f"`ham-artefacts fetch --out {self.root} --variants {variant}`"
            )
        from generator.variants.verified import open_checked

        self.checked = open_checked(self.root, variant)
        """The file as its manifest entry vouches for it (``sha256``: what a run records it read)."""
        self.reader = self.checked.reader
        self._info: dict | None = None

    # --- download -----------------------------------------------------------------------------

    def _manifest_source(self):
        if self.manifest is not None:
            return self.manifest
        from generator.distribution.info import default_manifest_path

        packaged = default_manifest_path()
        if packaged is None:
            raise UserError("manifest: no packaged data_manifest.json; pass manifest=URL|PATH")
        from generator.distribution.fetch import read_manifest

        if not read_manifest(packaged)[0].get("base_url"):
            raise UserError(
                f"{packaged}: the packaged manifest names no base_url (no published copy "
                "yet); pass manifest=URL|PATH, or build the files with `ham-artefacts generate`"
            )
        return packaged

    def download(self) -> None:
        """Fetch (resuming) and verify this variant's file into ``root``; no-op when already intact."""
        from generator.distribution.fetch import fetch

        # Several DataLoader / DDP processes may call this at once: the later ones wait for the first
        # (the folder lock) and then find the file present, instead of racing on one .part file.
        fetch(
            self._manifest_source(),
            self.root,
            variants=[self.variant],
            progress=self.progress,
            lock_wait=DOWNLOAD_LOCK_WAIT_S,
        )

    # --- sequence protocol --------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, index: int):
        n = len(self.reader)
        row = int(index)
        if row < 0:
            row += n
        if not 0 <= row < n:
            raise IndexError(f"index {index} out of range for {self.variant} with {n} rows")
        try:
            image, target = self.load(row)
            if self.transforms is not None:
                return self.transforms(image, target)
            if self.transform is not None:
                image = self.transform(image)
            if self.target_transform is not None:
                target = self.target_transform(target)
            return image, target
        except StopIteration as exc:
            # escaping __getitem__, it would end a DataLoader's (or a for loop's) iteration silently:
            # an epoch over zero images
            raise RuntimeError(f"{self.reader.path}: reading row {row} raised StopIteration") from exc

    def load(self, row: int) -> tuple[Any, Any]:
        """``(image, target)`` of file row ``row`` before any transform (``ds[i]`` without them)."""
        import torch
        from torchvision import tv_tensors

        pixels = decode_row(self.reader.image_buffer(row), self.decode_size)
        # a channels-last view of the decoded buffer (no copy): torch's uint8 antialiased resize, the
        # first training transform, is several times faster on that layout
        image = tv_tensors.Image(torch.from_numpy(pixels).permute(2, 0, 1))
        shape = (int(pixels.shape[0]), int(pixels.shape[1]))
        lesion = None
        values: list[Any] = []
        for name in self.target_types:
            if name == "label":
                values.append(int(self.reader.labels[row]))
            elif name == "meta":
                values.append(self.meta(row))
            elif name == "artefact_mask":
                values.append(
                    tv_tensors.Mask(torch.from_numpy(mask_at(self.reader.artefact_mask(row), shape)))
                )
            else:
                if lesion is None:
                    lesion = torch.from_numpy(mask_at(self.reader.lesion_mask(row), shape))
                if name == "lesion_mask":
                    values.append(tv_tensors.Mask(lesion))
                else:
                    from training.data.transforms import box_from_mask

                    box = box_from_mask(lesion)[None]
                    values.append(tv_tensors.BoundingBoxes(box, format="XYXY", canvas_size=shape))
        return image, values[0] if self._single_target else tuple(values)

    def meta(self, row: int) -> dict:
        """The ``meta`` target of file row ``row``."""
        return {
            "index": row,
            "image_id": self.reader.image_ids[row],
            "lesion_id": self.reader.lesion_ids[row],
            "has_artefact": bool(self.reader.has_artefact[row]),
            "kind": self.reader.artefact_kinds[row],
        }

    @property
    def classes(self) -> tuple[str, ...]:
        return self.reader.classes

    @property
    def labels(self):
        return self.reader.labels

    # --- description --------------------------------------------------------------------------

    @property
    def info(self) -> dict:
        """Description, split, classes, counts, artefact counts, licence + attribution, citation, SHA-256.

        Counts come from the file itself; SHA-256 and size from the manifest beside the data
        (``root/manifest.json``, written by fetch) or the one given.
        """
        if self._info is None:
            from generator.distribution.info import bare_info, build_info

            sources: list[str | os.PathLike | dict] = (
                [self.root] if (self.root / MANIFEST_NAME).is_file() else []
            )
            if self.manifest is not None:
                sources.append(self.manifest)
            entry = None
            for source in sources:
                try:
                    entry = build_info(source).get(self.variant) or entry
                except UserError:
                    continue
                if entry is not None and entry.get("sha256"):
                    break
            entry = dict(entry or bare_info().get(self.variant) or {"variant": self.variant})
            entry.update(_counts(self.reader))
            self._info = entry
        return self._info

    def montage(
        self,
        n: int = 16,
        seed: int = 0,
        size: int = 96,
        ncols: int | None = None,
        mark_artefacts: bool = True,
    ):
        """A grid of ``n`` randomly chosen images (PIL.Image); artefact images get a thin orange frame."""
        import numpy as np
        from PIL import Image, ImageDraw, ImageOps

        if n < 1:
            raise UserError(f"montage: n must be at least 1, got {n}")
        n = min(n, len(self))
        rng = np.random.default_rng(seed)
        picks = rng.choice(len(self), size=n, replace=False)
        ncols = ncols or math.ceil(math.sqrt(n))
        nrows = math.ceil(n / ncols)
        pad = 2
        grid = Image.new("RGB", (ncols * (size + pad) + pad, nrows * (size + pad) + pad), (255, 255, 255))
        draw = ImageDraw.Draw(grid)
        for k, i in enumerate(picks):
            tile = ImageOps.fit(Image.fromarray(decode_row(self.reader.image_buffer(int(i)))), (size, size))
            x = pad + (k % ncols) * (size + pad)
            y = pad + (k // ncols) * (size + pad)
            grid.paste(tile, (x, y))
            if mark_artefacts and self.reader.has_artefact[int(i)]:
                draw.rectangle((x, y, x + size - 1, y + size - 1), outline=(255, 140, 0), width=2)
        return grid

    def __repr__(self) -> str:
        info = self.info
        counts = ", ".join(f"{c}={info['class_counts'].get(c, 0)}" for c in self.classes)
        return (
            f"HAMArtefacts(variant={self.variant!r}, split={info.get('split')!r}, rows={len(self)}, "
            f"with_artefact={info['n_artefact']}, root={str(self.root)!r})\n  classes: {counts}\n"
            f"  licence: {info.get('licence')}"
        )


def _counts(reader) -> dict:
    classes = list(reader.classes)
    class_counts = {c: 0 for c in classes}
    artefact_counts: dict[str, int] = {}
    for label, has, kind in zip(reader.labels, reader.has_artefact, reader.artefact_kinds, strict=True):
        class_counts[classes[int(label)]] += 1
        if has:
            artefact_counts[kind] = artefact_counts.get(kind, 0) + 1
    return {
        "rows": len(reader),
        "class_counts": class_counts,
        "artefact_counts": dict(sorted(artefact_counts.items())),
        "n_artefact": int(sum(artefact_counts.values())),
        "classes": classes,
    }
