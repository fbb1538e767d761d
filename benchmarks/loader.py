"""Loader throughput: the HDF5 variant Dataset vs torchvision ImageFolder over the same JPEG images.

Images/s through decode + the training augmentations (random resized crop to 224, rotation, flips,
colour jitter), both with the same v2 transforms, the same number of DataLoader workers and batch size,
side by side in one run. The HDF5 Dataset is measured three ways: image only at full size (the
like-for-like comparison with ImageFolder), image only with reduced-size decoding (``decode_size``:
what the classifier trains on), and with lesion masks and boxes (what the detectors need).

    .venv/bin/python benchmarks/loader.py [--variant FILE.h5] [--images 512] [--workers 2] [--size 224]

Without --variant it writes two synthetic 600x450 variants (HAM10000's size) to a temporary folder,
one per kind of row the generator stores: original JPEG rows (train_none; the clean rows of every
variant) and artefact rows, stored as uncompressed PNG (train_all; the artefact rows of every variant).
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


def synthetic_images(n_images: int, size=(600, 450), seed: int = 0):
    """Smooth, lesion-like uint8 images with an elliptical lesion mask, and their labels."""
    from PIL import Image

    from generator import CLASSES

    rng = np.random.default_rng(seed)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    mask = ((yy - height / 2) / (height * 0.3)) ** 2 + ((xx - width / 2) / (width * 0.25)) ** 2 <= 1
    for i in range(n_images):
        low = rng.uniform(60, 230, (6, 8, 3)).astype(np.uint8)
        image = np.asarray(Image.fromarray(low).resize((width, height), Image.BICUBIC), dtype=np.float64)
        image[mask] *= 0.5
        image = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
        yield image, mask, i % len(CLASSES)


def synthetic_variant(folder: Path, n_images: int, artefacts: bool, size=(600, 450), seed: int = 0) -> Path:
    """A train variant as the generator writes it: original JPEG rows (quality 90, as dermoscopy
    JPEGs; like train_none) or, with ``artefacts``, a built-in artefact on every image, stored as the
    generator stores artefact rows (uncompressed PNG; like train_all)."""
    from PIL import Image

    from generator import CLASSES
    from generator.artefacts import insert_artefact
    from generator.artefacts.kinds import KINDS
    from generator.artefacts.templates import TemplateBank
    from generator.variants.store import Row, encode_mask, encode_png_stored, write_variant

    bank = TemplateBank.builtin(0)
    rows = []
    for i, (image, mask, label) in enumerate(synthetic_images(n_images, size, seed)):
        artefact = np.zeros_like(mask)
        if artefacts:
            image, artefact, _ = insert_artefact(image, mask, list(KINDS)[i % len(KINDS)], bank, i)
            data = encode_png_stored(image)
        else:
            buf = io.BytesIO()
            Image.fromarray(image).save(buf, format="JPEG", quality=90)
            data = buf.getvalue()
        rows.append(
            Row(
                f"ISIC_{i:07d}",
                f"HAM_{i:07d}",
                label,
                data,
                encode_mask(mask),
                encode_mask(artefact),
                has_artefact=artefacts,
                metadata={"dx": CLASSES[label]},
            )
        )
    name = "train_all" if artefacts else "train_none"
    path = write_variant(
        folder / f"{name}.h5",
        rows,
        len(rows),
        {
            "variant": {"name": name},
            "split": "train",
            "seed": seed,
            "source_fingerprint": "benchmark",
            "templates": "builtin:0",
        },
    )
    from generator.variants.manifest import write_manifest_of_files

    write_manifest_of_files(folder)  # consumers read a data folder only through its manifest
    return path


def export_image_folder(variant: Path, root: Path) -> Path:
    """The same images as ImageFolder expects them: root/<class>/<image_id>.jpg. JPEG rows are copied
    verbatim; other rows (artefact rows are PNG) are saved as JPEG quality 95, as a user would."""
    from PIL import Image

    from generator.variants.store import VariantReader, decode_image

    with VariantReader(variant) as reader:
        for i in range(len(reader)):
            folder = root / reader.classes[reader.labels[i]]
            folder.mkdir(parents=True, exist_ok=True)
            data = reader.image_bytes(i)
            if data[:2] != b"\xff\xd8":
                buf = io.BytesIO()
                Image.fromarray(decode_image(data)).save(buf, format="JPEG", quality=95)
                data = buf.getvalue()
            (folder / f"{reader.image_ids[i]}.jpg").write_bytes(data)
    return root


def throughput(loader) -> float:
    """Images/s over one full pass (from asking for the first batch to receiving the last one).
    The workers are persistent and were warmed by an earlier pass: the first calls of every kernel
    are several times slower, which a short cold pass would over-weight (a real epoch is ~10,000
    images)."""
    seen, start = 0, time.perf_counter()
    for batch in loader:
        seen += len(batch["label"] if isinstance(batch, dict) else batch[1])
    return seen / (time.perf_counter() - start)


TARGET = 1.5
"""Issue 4: HDF5 Dataset images/s over ImageFolder's, same transforms and workers."""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variant", help="a variant .h5 file (default: two synthetic 600x450 ones)")
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="rounds over all loaders, interleaved; the best round counts (shared machines are noisy)",
    )
    args = parser.parse_args(argv)

    import torch

    torch.manual_seed(0)
    print(
        f"{args.size}x{args.size}, {args.workers} workers, batch {args.batch_size}, torch {torch.__version__}, "
        f"best of {args.repeats} interleaved rounds; ImageFolder = torchvision's default PIL loader"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.variant:
            variants = {Path(args.variant).stem: Path(args.variant)}
        else:
            variants = {
                "original JPEG rows (like train_none)": synthetic_variant(tmp, args.images, False),
                "artefact rows, stored PNG (like train_all)": synthetic_variant(tmp, args.images, True),
            }
        verdicts = []
        for label, variant in variants.items():
            verdicts.append((label, compare(variant, tmp / f"imagefolder-{variant.stem}", args)))
        print(f"target: HDF5 >= {TARGET}x ImageFolder")
        for label, (full, training) in verdicts:
            print(
                f"  {label}: image only {full:.2f}x at full size, {training:.2f}x as training reads it "
                f"(reduced decode) -> {'met' if min(full, training) >= TARGET else 'NOT met'}"
            )
    return 0


def pil_to_channels_last(image):
    """uint8 CxHxW channels-last view of a copy of the PIL image's HxWxC pixels (the layout, and the
    one copy, that the HDF5 Dataset's decode also produces)."""
    import torch

    return torch.from_numpy(np.array(image)).permute(2, 0, 1)


class FolderTransform:
    """ImageFolder's transform: the PIL image as a channels-last uint8 view, then the joint transform."""

    def __init__(self, joint):
        self.joint = joint

    def __call__(self, image):
        return self.joint(pil_to_channels_last(image))


def compare(variant: Path, folder_root: Path, args) -> tuple[float, float]:
    import torch
    from torch.utils.data import DataLoader
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import v2

    from training.data.batches import collate, training_targets, worker_init_fn
    from training.data.datasets import HAMArtefacts
    from training.data.transforms import COLOUR_JITTER, CROP_SCALE, ROTATION_DEGREES, train_transform

    root = export_image_folder(variant, folder_root)
    joint = train_transform(args.size, float_output=False)  # as training.run.engine builds it: uint8 out
    # ImageFolder gets the very same transform, on a channels-last uint8 view of the PIL image its
    # default loader returns (the layout the HDF5 Dataset hands over: no kernel advantage either way)
    folder_transform = FolderTransform(joint)
    common = {
        "batch_size": args.batch_size,
        "num_workers": args.workers,
        "worker_init_fn": worker_init_fn,
        "shuffle": False,
        "persistent_workers": args.workers > 0,
    }

    def hdf5(with_masks: bool, decode_size=None):
        return HAMArtefacts(
            variant.parent,
            variant.stem,
            target_types=training_targets(with_masks),
            transforms=joint,
            decode_size=decode_size,
        )

    # context, not the comparison: the same augmentations as a user would write them, torchvision's
    # stock kernels on the PIL images ImageFolder returns
    stock = v2.Compose(
        [
            v2.RandomResizedCrop(args.size, scale=CROP_SCALE, antialias=True),
            v2.RandomRotation(ROTATION_DEGREES),
            v2.RandomHorizontalFlip(),
            v2.RandomVerticalFlip(),
            v2.ColorJitter(**COLOUR_JITTER),
            v2.PILToTensor(),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )
    datasets = {
        "ImageFolder (JPEG files)": ImageFolder(str(root), transform=folder_transform),
        "ImageFolder, stock v2 kernels (PIL)": ImageFolder(str(root), transform=stock),
        # the like-for-like comparison: image only, full-size decode
        "HDF5 image only, full size": hdf5(with_masks=False),
        # what the classifier trains on: image only, reduced-size decode
        "HDF5 image only, reduced decode": hdf5(with_masks=False, decode_size=args.size),
        # what the detectors train on: image + lesion mask PNG through the transforms, box in collate
        "HDF5 + masks, reduced decode": hdf5(with_masks=True, decode_size=args.size),
    }
    loaders = {
        name: DataLoader(ds, **common)
        if isinstance(ds, ImageFolder)
        else DataLoader(ds, collate_fn=collate, **common)
        for name, ds in datasets.items()
    }
    print(f"{variant.name}: {len(datasets['ImageFolder (JPEG files)'])} images")
    for loader in loaders.values():  # start the workers, warm every kernel
        throughput(loader)
    rates = {name: 0.0 for name in loaders}
    for _ in range(args.repeats):
        for name, loader in loaders.items():
            rates[name] = max(rates[name], throughput(loader))
    base_name = next(iter(rates))
    for name, rate in rates.items():
        ratio = "" if name == base_name else f"   {rate / rates[base_name]:.2f}x ImageFolder"
        print(f"  {name:34s} {rate:8.1f} images/s{ratio}")
    print_cost_split(datasets["HDF5 image only, full size"], datasets["ImageFolder (JPEG files)"], joint)
    base = rates[base_name]
    stock = rates["ImageFolder, stock v2 kernels (PIL)"]
    print(
        f"  as training reads it vs ImageFolder with torchvision's stock kernels: "
        f"{rates['HDF5 image only, reduced decode'] / stock:.2f}x (context; the target compares same transforms)"
    )
    return rates["HDF5 image only, full size"] / base, rates["HDF5 image only, reduced decode"] / base


def print_cost_split(hdf5, folder, joint, n: int = 32) -> None:
    """CPU ms an image, one thread, for decoding and for the shared augmentations: the augmentations
    cost both loaders the same, which bounds how far any storage layout can pull ahead."""
    import torch

    def cpu_ms(step) -> float:
        for i in range(8):  # warm-up: the first calls of the kernels are several times slower
            step(i % len(hdf5))
        start = time.process_time()
        for i in range(n):
            step(i % len(hdf5))
        return (time.process_time() - start) / n * 1000

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    image = hdf5.load(0)[0]
    hdf5_decode = cpu_ms(lambda i: hdf5.load(i))  # the row read and decoded, no transform
    folder_decode = cpu_ms(lambda i: pil_to_channels_last(folder.loader(folder.samples[i][0])))
    augment = cpu_ms(lambda i: joint(image))
    torch.set_num_threads(threads)
    print(
        f"  cost split (CPU ms an image, 1 thread, full size): read + decode HDF5 {hdf5_decode:.2f} / "
        f"ImageFolder {folder_decode:.2f}; the shared augmentations {augment:.2f}"
    )


if __name__ == "__main__":
    sys.exit(main())
