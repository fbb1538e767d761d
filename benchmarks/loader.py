"""Loader throughput: the HDF5 variant Dataset vs torchvision ImageFolder over the same JPEG images.

Images/s through decode + the training augmentations (random resized crop to 224, rotation, flips,
colour jitter), both with the same v2 transforms, the same number of DataLoader workers and batch size,
side by side in one run. The HDF5 Dataset is measured three ways: with lesion masks and boxes (what the
detectors need), image only at full size (the like-for-like comparison with ImageFolder), and image
only with reduced-size JPEG decoding (``decode_size``: what the classifier trains on).

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


def throughput(loader, warmup_batches: int = 2) -> float:
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
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds over all loaders, interleaved; the best round counts (shared machines are noisy)")
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
        # ImageFolder gets the very same v2 pipeline, on the image alone (it has no masks), after
        # torchvision's default PIL loader.
        folder_transform = v2.Compose([v2.PILToTensor(), joint.pipeline, v2.ToDtype(torch.float32, scale=True)])
        common = {"batch_size": args.batch_size, "num_workers": args.workers, "worker_init_fn": worker_init_fn,
                  "shuffle": False}
        reduced = (args.size, args.size)
        datasets = {
            "ImageFolder (PIL, full size)": ImageFolder(str(root), transform=folder_transform),
            # what the detectors train on: image + lesion mask PNG + box, all through the transforms
            "HDF5 + masks (detectors)": HDF5VariantDataset(variant, transform=joint, with_masks=True),
            # the like-for-like comparison: image only, full-size decode by torchvision.io
            "HDF5 image only, full size": HDF5VariantDataset(variant, transform=joint, with_masks=False),
            # what the classifier trains on: image only, reduced-size JPEG decode (PIL draft)
            "HDF5 image only, reduced decode": HDF5VariantDataset(variant, transform=joint, with_masks=False,
                                                                  decode_size=reduced),
        }
        loaders = {name: DataLoader(ds, **common) if isinstance(ds, ImageFolder)
                   else DataLoader(ds, collate_fn=collate, **common) for name, ds in datasets.items()}
        n_images = len(HDF5VariantDataset(variant))
        print(f"{n_images} images, {args.size}x{args.size}, {args.workers} workers, batch {args.batch_size}, "
              f"torch {torch.__version__}, best of {args.repeats} interleaved rounds")
        rates = {name: 0.0 for name in loaders}
        for _ in range(args.repeats):
            for name, loader in loaders.items():
                rates[name] = max(rates[name], throughput(loader))
        base_name = next(iter(rates))
        for name, rate in rates.items():
            ratio = "" if name == base_name else f"   {rate / rates[base_name]:.2f}x ImageFolder"
            print(f"  {name:34s} {rate:8.1f} images/s{ratio}")
        print_cost_split(datasets["HDF5 image only, full size"], datasets["ImageFolder (PIL, full size)"], joint)
    return 0


def print_cost_split(hdf5, folder, joint, n: int = 32) -> None:
    """CPU ms an image, one thread, for decoding and for the shared augmentations: the augmentations
    cost both loaders the same, which bounds how far any storage layout can pull ahead."""
    import torch
    from torchvision.transforms import v2

    def cpu_ms(step) -> float:
        start = time.process_time()
        for i in range(n):
            step(i % len(hdf5))
        return (time.process_time() - start) / n * 1000

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    to_tensor = v2.PILToTensor()
    image = hdf5._decode_image(hdf5.reader.image_bytes(0))
    hdf5_decode = cpu_ms(lambda i: hdf5._decode_image(hdf5.reader.image_bytes(i)))
    folder_decode = cpu_ms(lambda i: to_tensor(folder.loader(folder.samples[i][0])))
    augment = cpu_ms(lambda i: joint(image))
    torch.set_num_threads(threads)
    print(f"  cost split (CPU ms an image, 1 thread): HDF5 decode {hdf5_decode:.1f}, ImageFolder decode "
          f"{folder_decode:.1f}, shared augmentations {augment:.1f}; ceiling with these transforms "
          f"{(folder_decode + augment) / (hdf5_decode + augment):.2f}x")


if __name__ == "__main__":
    sys.exit(main())
