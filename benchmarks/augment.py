"""Benchmark: the on-the-fly artefact augmentation, milliseconds per 600x450 image on one core.

Times, per image (median thread-CPU ms, best of ``--rounds`` rounds of ``--images`` calls):

* ``ArtefactAugmenter`` (numpy) at p = 1 with the lesion mask given: mask check, placement,
  insertion and the artefact mask out (the issue's target, <= 2 ms);
* ``RandomArtefact`` (torchvision v2) at p = 1 on (Image, Mask, BoundingBoxes) returning the
  artefact mask: the same plus the tensor wrapping;
* the same without a lesion mask (automatic segmentation first), also at the segmentation's earlier
  working size (80 px) for comparison;
* at the size the training loader feeds it (JPEG drafted to 300x225 for 224 px training), with the
  mask (detectors) and without (the classifier: automatic segmentation);
* p = 0.5, the mean cost per image a training epoch pays.

Baseline, measured in the same run on the same images: the rest of the training loader's per-image
work: JPEG decode (full size, and drafted as ``training.data.decode`` does) plus the v2 training
augmentations of ``training.data.transforms.train_transform(224)`` (crop, rotation, flips, colour jitter).

    python benchmarks/augment.py [--images 200] [--rounds 3] [--templates builtin|DIR]
"""

from __future__ import annotations

import argparse
import io
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
TARGET_MS = 2.0
"""Issue 14: median per 600x450 image, one core, mask handling included."""


BEFORE_AUTO_MASK_SIDE = 80
"""generator.artefacts.augment.AUTO_MASK_SIDE before it was lowered to meet the no-mask target (issue 14)."""


def at_side(side: int, call, *args):
    """``call(*args)`` with the automatic segmentation's working size set to ``side`` pixels."""
    import generator.artefacts.augment as augment

    kept = augment.AUTO_MASK_SIDE
    augment.AUTO_MASK_SIDE = side
    try:
        return call(*args)
    finally:
        augment.AUTO_MASK_SIDE = kept


def timed(call, items, rounds: int) -> tuple[float, float]:
    """(median, mean) thread-CPU ms of ``call(item)`` over ``items``, from the round with the lowest
    median (the host's other load only ever adds time); the first 5 calls of each round warm caches."""
    best = (math.inf, math.inf)
    for _ in range(rounds):
        for item in items[:5]:
            call(item)
        costs = []
        for item in items:
            start = time.thread_time()
            call(item)
            costs.append((time.thread_time() - start) * 1000)
        median = statistics.median(costs)
        if median < best[0]:
            best = (median, statistics.fmean(costs))
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--templates", default="builtin")
    args = parser.parse_args(argv)
    from insertion import one_core

    one_core()
    import torch
    from PIL import Image
    from torchvision import tv_tensors

    from generator.artefacts.augment import AUTO_MASK_SIDE, ArtefactAugmenter
    from generator.artefacts.gallery import demo_image
    from training.data.augment import RandomArtefact
    from training.data.decode import reduce_like_jpeg_draft
    from training.data.transforms import box_from_mask, train_transform

    torch.set_num_threads(1)
    scenes = [demo_image(seed, (600, 450)) for seed in range(8)]
    jpegs = []
    for image, _ in scenes:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=90)
        jpegs.append(buffer.getvalue())
    n = args.images
    numpy_items = [(scenes[i % len(scenes)][0], scenes[i % len(scenes)][1], i) for i in range(n)]

    def tensors(image, mask):
        height, width = mask.shape
        return (
            tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1)),
            tv_tensors.Mask(torch.from_numpy(np.ascontiguousarray(mask, dtype=np.uint8))),
            tv_tensors.BoundingBoxes(
                box_from_mask(torch.from_numpy(np.ascontiguousarray(mask, np.uint8)))[None],
                format="XYXY",
                canvas_size=(height, width),
            ),
        )

    tensor_items = [tensors(image, mask) for image, mask, _ in numpy_items]
    small = [
        (reduce_like_jpeg_draft(image, (224, 224)), mask[::2, ::2], seed) for image, mask, seed in numpy_items
    ]
    small_tensors = [tensors(image, mask) for image, mask, _ in small]

    always = ArtefactAugmenter(p=1.0, templates=args.templates)
    half = ArtefactAugmenter(p=0.5, templates=args.templates)
    transform = RandomArtefact(p=1.0, templates=args.templates, return_artefact_mask=True)
    train = train_transform(224, float_output=False)

    def decode(data: bytes, draft: bool):
        with Image.open(io.BytesIO(data)) as im:
            if draft:
                im.draft("RGB", (224, 224))
            return torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1)

    rows = [
        ("augmenter, p=1, lesion mask given", lambda it: always(*it), numpy_items),
        ("RandomArtefact, p=1, Image+Mask+Boxes", lambda it: transform(*it), tensor_items),
        ("augmenter, p=1, automatic lesion mask", lambda it: always(it[0], None, it[2]), numpy_items),
        # the same, segmenting at the working size used before (80 px): what the smaller one saves
        (
            f"  same, segmented at {BEFORE_AUTO_MASK_SIDE} px (before)",
            lambda it: at_side(BEFORE_AUTO_MASK_SIDE, always, it[0], None, it[2]),
            numpy_items,
        ),
        ("augmenter, p=1, 300x225 (loader's size)", lambda it: always(*it), small),
        ("RandomArtefact, p=1, 300x225", lambda it: transform(*it), small_tensors),
        # the classifier's training path: images only, so the lesion is segmented automatically
        ("RandomArtefact, p=1, 300x225, automatic lesion mask", lambda it: transform(it[0]), small_tensors),
        ("augmenter, p=0.5, lesion mask given", lambda it: half(*it), numpy_items),
    ]
    baselines = [
        (
            "decode 600x450 JPEG + v2 train augmentations",
            lambda i: train(decode(jpegs[i % len(jpegs)], False)),
            list(range(n)),
        ),
        (
            "decode drafted (300x225) + v2 train augmentations",
            lambda i: train(decode(jpegs[i % len(jpegs)], True)),
            list(range(n)),
        ),
    ]
    print(
        f"load average before: {os.getloadavg()[0]:.2f}  ({n} images, best of {args.rounds} rounds, one pinned "
        f"core, thread-CPU ms; templates {always.bank.source})"
    )
    print(f"{'what':<56} {'median ms':>10} {'mean ms':>8}")
    measured = {}
    for label, call, items in baselines + rows:
        median, mean = timed(call, items, args.rounds)
        measured[label] = (median, mean)
        print(f"{label:<56} {median:>10.2f} {mean:>8.2f}")
    full_base, draft_base = (measured[label][0] for label, _, _ in baselines)
    print()
    print(
        f"ratios against the loader's per-image work (median): full size {full_base:.2f} ms, drafted "
        f"{draft_base:.2f} ms"
    )
    for label, _, _ in rows:
        base = draft_base if "300x225" in label else full_base
        print(f"  {label:<54} {measured[label][0] / base:>6.2f}x")
    auto, before = measured[rows[2][0]][0], measured[rows[3][0]][0]
    print(
        f"automatic lesion mask at {AUTO_MASK_SIDE} px against {BEFORE_AUTO_MASK_SIDE} px (same run): "
        f"{auto:.2f} / {before:.2f} ms = {auto / before:.2f}x"
    )
    target = max(measured[rows[0][0]][0], measured[rows[1][0]][0])
    verdict = "met" if target <= TARGET_MS else "NOT met"
    print(
        f"target <= {TARGET_MS} ms median per 600x450 image with the lesion mask (augmenter and transform): "
        f"{target:.2f} ms, {verdict}"
    )
    auto = measured[rows[2][0]][0]
    print(
        f"without a lesion mask (automatic segmentation): {auto:.2f} ms, "
        f"{'met' if auto <= TARGET_MS else 'NOT met'}"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
