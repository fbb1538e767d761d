"""GPU throughput: ResNet-34 training images/s at 224 px (bf16 AMP, channels_last), then one Faster R-CNN
and one Mask R-CNN epoch on a small variant, with the card's name.

    .venv/bin/python benchmarks/gpu.py [--data DIR] [--batch-size 256] [--steps 50] [--workers 8]

The classifier figure is measured twice: on synthetic tensors already on the GPU (the model's ceiling)
and through the real HDF5 loader (decode + augmentations), so a data-loading bottleneck shows as a gap.
Without --data, the detector epochs use a synthetic variant. Exits 0 with a message when no GPU exists.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def classifier_rate(model, batches, device, steps: int) -> float:
    import torch
    import torch.nn.functional as F

    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    model.train()
    seen = 0
    start = None
    for step, (images, labels) in enumerate(batches):
        if step == 5:  # warm-up: cudnn autotuning, allocator
            torch.cuda.synchronize(device)
            start, seen = time.perf_counter(), 0
        images = images.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        labels = labels.to(device, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = F.cross_entropy(model(images).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += len(labels)
        if step + 1 >= steps + 5:
            break
    torch.cuda.synchronize(device)
    return seen / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="data folder with train_none.h5 (+ test variants are not needed)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--detector-images", type=int, default=512)
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("no CUDA GPU available: GPU benchmark skipped (the CPU path is covered by the tests)")
        return 0
    from torch.utils.data import DataLoader

    from training.data import HDF5VariantDataset, collate, worker_init_fn
    from training.engine import TrainConfig, train
    from training.models import build_model
    from training.transforms import train_transform

    device = torch.device("cuda", 0)
    torch.backends.cudnn.benchmark = True
    print(f"device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}")

    model = build_model("resnet34").to(device).to(memory_format=torch.channels_last)
    synthetic = ((torch.rand(args.batch_size, 3, 224, 224, device=device),
                  torch.randint(0, 7, (args.batch_size,), device=device)) for _ in iter(int, 1))
    rate = classifier_rate(model, synthetic, device, args.steps)
    print(f"resnet34 224px bf16 AMP, batch {args.batch_size}, tensors on GPU: {rate:,.0f} images/s")

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else None
        if data is None:
            from benchmarks.loader import synthetic_variant

            data = Path(tmp)
            synthetic_variant(data, args.detector_images)
        dataset = HDF5VariantDataset(data / "train_none.h5", transform=train_transform(224), decode_size=(224, 224),
                                      with_masks=False)
        loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                            collate_fn=collate, pin_memory=True, drop_last=True, worker_init_fn=worker_init_fn,
                            persistent_workers=True, prefetch_factor=4)

        def real_batches():
            while True:
                for batch in loader:
                    yield batch["image"], batch["label"]

        steps = min(args.steps, max(1, 3 * len(loader)))
        rate_loaded = classifier_rate(model, real_batches(), device, steps)
        print(f"resnet34 224px bf16 AMP, batch {args.batch_size}, through the HDF5 loader "
              f"({args.workers} workers): {rate_loaded:,.0f} images/s")

        for arch in ("fasterrcnn_resnet34", "maskrcnn_resnet34"):
            config = TrainConfig(arch=arch, data=str(data), image_size=448, epochs=1, batch_size=16,
                                 workers=args.workers, predict=False, n_folds=5)
            start = time.perf_counter()
            summary = train(config, Path(tmp) / "runs" / arch, progress=False)
            seconds = time.perf_counter() - start
            print(f"{arch} one epoch at 448px on {len(dataset)} images (train 4/5 + validate 1/5): "
                  f"{seconds:.1f} s, best val macro PR-AUC {summary['best_val_macro_pr_auc']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
