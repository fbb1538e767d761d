"""``HAMArtefacts``: one ready-made variant as a Dataset, in the spirit of MedMNIST.

    >>> from training.data.datasets import HAMArtefacts
    >>> ds = HAMArtefacts("data/", "test_all", download=True)   # fetch + SHA-256 check
    >>> image, label, meta = ds[0]       # PIL.Image, int, {"image_id", "has_artefact", "kind"}
    >>> ds.info["licence"], ds.info["artefact_counts"]
    >>> ds.montage(16).save("grid.png")

Files are read through ``generator.variants.store.VariantReader`` only (the one module that knows the
layout). torch is optional: the class subclasses ``torch.utils.data.Dataset`` when torch is
installed, and works as a plain sequence otherwise.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

try:  # torch is optional for reading and viewing the data
    from torch.utils.data import Dataset as _DatasetBase
except ImportError:  # pragma: no cover - exercised only without torch
    _DatasetBase = object  # type: ignore[misc,assignment]  # a plain base class when torch is absent

from generator.errors import UserError

DOWNLOAD_LOCK_WAIT_S = 3600.0


class HAMArtefacts(_DatasetBase):
    """The rows of ``<root>/<variant>.h5``: ``(image, label, metadata)``.

    root:             folder holding the variant files (created by ``download=True``).
    variant:          e.g. ``"train_none"``, ``"test_all"``, ``"test_40"`` (``ham-artefacts list``).
    transform:        applied to the PIL image (e.g. a torchvision transform).
    target_transform: applied to the integer label.
    download:         fetch the file if it is missing or does not match its SHA-256.
    manifest:         where to download from: a manifest path, folder or URL (http/https/file).
                      Default: the manifest packaged with the code (``data_manifest.json``).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        variant: str,
        transform=None,
        target_transform=None,
        download: bool = False,
        manifest: str | os.PathLike | dict | None = None,
        progress: bool = True,
    ):
        self.root = Path(root).expanduser()
        self.variant = variant
        self.transform = transform
        self.target_transform = target_transform
        self.manifest = manifest
        self.progress = progress
        if not isinstance(variant, str) or not variant:
            raise UserError(f"variant: must be a non-empty string, got {variant!r}")
        if download:
            self.download()
        path = self.root / f"{variant}.h5"
        if not path.is_file():
            raise UserError(
                f"{path}: variant file not found; pass download=True or run "
                f"`ham-artefacts fetch --out {self.root} --variants {variant}`"
            )
        from generator.variants.store import VariantReader

        self.reader = VariantReader(path)
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
        index = int(index)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {self.variant} with {n} rows")
        from PIL import Image

        image = Image.fromarray(self.reader.image(index))
        label = int(self.reader.labels[index])
        meta = {
            "image_id": self.reader.image_ids[index],
            "has_artefact": bool(self.reader.has_artefact[index]),
            "kind": self.reader.artefact_kinds[index],
        }
        try:
            if self.transform is not None:
                image = self.transform(image)
            if self.target_transform is not None:
                label = self.target_transform(label)
        except StopIteration as exc:
            # escaping __getitem__, it would end a DataLoader's (or a for loop's) iteration silently
            raise RuntimeError(f"{self.variant}: a transform raised StopIteration on row {index}") from exc
        return image, label, meta

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
                [self.root] if (self.root / "manifest.json").is_file() else []
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
            tile = ImageOps.fit(Image.fromarray(self.reader.image(int(i))), (size, size))
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
