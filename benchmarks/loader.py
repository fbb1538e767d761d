"""Loader throughput: the HDF5 variant Dataset vs torchvision ImageFolder over the same JPEG images.

Images/s through decode + the training augmentations (random resized crop to 224, rotation, flips,
colour jitter), both with the same v2 transforms, the same number of DataLoader workers and batch size,
side by side in one run. The HDF5 Dataset is measured twice: decoding at full size (the layout's own
cost) and with reduced-size JPEG decoding (``decode_size``, what training uses).

    .venv/bin/python benchmarks/loader.py [--variant FILE.h5] [--images 256] [--workers 2] [--size 224]

Without --variant it writes a synthetic 600x450 JPEG variant (HAM10000's size) to a temporary folder.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def synthetic_variant(folder: Path, n_images: int, size=(600, 450), seed: int = 0) -> Path:
    """A train variant of smooth, lesion-like JPEGs (quality 90, as dermoscopy JPEGs)."""
    from PIL import Image

    from generator import CLASSES
    from generator.store import Row, encode_mask, write_variant

    rng = np.random.default_rng(seed)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    rows = []
    for i in range(n_images):
        low = rng.uniform(60, 230, (6, 8, 3)).astype(np.uint8)
        image = np.asarray(Image.fromarray(low).resize((width, height), Image.BICUBIC), dtype=np.float64)
        mask = ((yy - height / 2) / (height * 0.3)) ** 2 + ((xx - width / 2) / (width * 0.25)) ** 2 <= 1
        image[mask] *= 0.5
        image = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="JPEG", quality=90)
        label = i % len(CLASSES)
        rows.append(Row(f"ISIC_{i:07d}", f"HAM_{i:07d}", label, buf.getvalue(), encode_mask(mask),
                        encode_mask(np.zeros_like(mask)), metadata={"dx": CLASSES[label]}))
    return write_variant(folder / "train_none.h5", rows, len(rows),
                         {"variant": {"name": "train_none"}, "split": "train", "seed": seed,
                          "source_fingerprint": "benchmark", "templates": "none"})


def export_image_folder(variant: Path, root: Path) -> Path:
    """The same images as ImageFolder expects them: root/<class>/<image_id>.jpg (bytes verbatim)."""
    from generator.store import VariantReader

    with VariantReader(variant) as reader:
        for i in range(len(reader)):
            folder = root / reader.classes[reader.labels[i]]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{reader.image_ids[i]}.jpg").write_bytes(reader.image_bytes(i))
    return root


def throughput(loader, n_images: int, warmup_batches: int = 2) -> float:
    iterator = iter(loader)
    for _ in range(warmup_batches):
        next(iterator)
    seen, start = 0, time.perf_counter()
    for batch in iterator:
        seen += len(batch["label"] if isinstance(batch, dict) else batch[1])
    return seen / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", help="a variant .h5 file (default: a synthetic 600x450 one)")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)

    import torch
    from torch.utils.data import DataLoader
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import v2

    from training.data import HDF5VariantDataset, collate, worker_init_fn
    from training.transforms import train_transform

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        variant = Path(args.variant) if args.variant else synthetic_variant(tmp, args.images)
        root = export_image_folder(variant, tmp / "imagefolder")
        joint = train_transform(args.size)
        # ImageFolder gets the very same v2 pipeline, on the image alone (it has no masks).
        folder_transform = v2.Compose([v2.PILToTensor(), joint.pipeline, v2.ToDtype(torch.float32, scale=True)])
        common = {"batch_size": args.batch_size, "num_workers": args.workers, "worker_init_fn": worker_init_fn,
                  "shuffle": False}
        loaders = {
            "ImageFolder (PIL decode)": DataLoader(ImageFolder(str(root), transform=folder_transform), **common),
            "HDF5 full-size decode": DataLoader(HDF5VariantDataset(variant, transform=joint), collate_fn=collate,
                                                **common),
            "HDF5 reduced decode (training)": DataLoader(
                HDF5VariantDataset(variant, transform=joint, decode_size=(args.size, args.size)),
                collate_fn=collate, **common),
        }
        n_images = len(HDF5VariantDataset(variant))
        print(f"{n_images} images, {args.size}x{args.size}, {args.workers} workers, batch {args.batch_size}, "
              f"torch {torch.__version__}, {torch.get_num_threads()} threads")
        rates = {}
        for name, loader in loaders.items():
            rates[name] = throughput(loader, n_images)
            print(f"  {name:32s} {rates[name]:8.1f} images/s")
        base = rates["ImageFolder (PIL decode)"]
        for name in list(rates)[1:]:
            print(f"  ratio {name} / ImageFolder: {rates[name] / base:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
