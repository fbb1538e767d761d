"""GPU throughput: every figure the training needs, in one run under a global deadline (9 minutes by default).

    PYTHONPATH=. python benchmarks/gpu.py [--data DIR] [--deadline 540] [--workers 8 14]
    PYTHONPATH=. python benchmarks/gpu.py --smoke        # tiny sizes, on CPU when no GPU exists (the tests run it)

One JSON line per figure on stdout, flushed as soon as it is measured (a run cut short keeps what it had):

* ``versions``: torch, torchvision, CUDA, cuDNN, the card, and a CUDA NMS check (``batched_nms`` on the
  GPU keeps the boxes it keeps on the CPU).
* ``ceiling``: ResNet-34 at 224 px on pre-made uint8 batches already on the GPU, at batch 32 (the
  paper's) and 256, timed with CUDA events: the bare loop (scale, forward, loss, backward, step) against
  the engine's own loop body (``engine.train_step`` + ``engine.LossTracker``, gradient clipping included).
* ``loader``: the training loader alone (``engine.train_loader``: persistent workers, uint8 out, pinned
  memory) with 8 and 14 workers: time to the first batch, the steady rate after it, and the second
  epoch's time to first batch (persistent workers: no re-fork).
* ``train_resnet34``: ``engine.train()`` on about 4,096 rows (4/5 train, 1/5 validate), 2 epochs: training
  images/s from log.jsonl; then the same run in a child process killed with SIGTERM during epoch 1
  (it finishes the epoch, writes last.pt, exits) and resumed here: the largest weight difference
  against the uninterrupted run (0 on CPU; on CUDA a tolerance: cuDNN autotuning and atomics).
* ``train_fasterrcnn_resnet34``, ``train_maskrcnn_resnet34``: ``train()`` on about 512 rows at 448 px,
  1 epoch: training images/s (the loop only, from log.jsonl) and peak GPU memory; then the step time
  on one resident batch with bf16 autocast over the backbone only (the engine's choice) against
  autocast over the whole detector (the price of float32 box coordinates in the heads).

Without ``--data`` it writes a synthetic ``train_none.h5`` (JPEG rows at HAM10000's 600x450 with lesion
masks). A figure that fails prints ``{"figure": ..., "error": ...}`` and the others still run; one the
deadline leaves no time for prints ``"skipped"``. The exit status is 1 when any figure failed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from generator.variants import CLEAN_TRAIN  # noqa: E402  (the checkout, on the path above)

TRAIN_FILE = f"{CLEAN_TRAIN}.h5"
# Idle OpenMP threads sleep instead of spinning (read once, when torch loads): spinning threads slow
# every small op of the data path in the main process (training/cli.py:_passive_openmp).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Sizes of a real run and of the smoke run (CPU, tiny: it only proves every code path runs).
FULL = {
    "image_size": 224,
    "detector_size": 448,
    "batch_sizes": (32, 256),
    "ceiling_steps": 40,
    "warmup": 8,
    "rows": 4096,
    "detector_rows": 512,
    "batch_size": 32,
    "detector_batch_size": 16,
    "loader_seconds": 15.0,
    "image_shape": (600, 450),
    "unique_images": 256,
    "detector_options": {},
}
SMOKE = {
    "image_size": 32,
    "detector_size": 64,
    "batch_sizes": (2, 4),
    "ceiling_steps": 2,
    "warmup": 1,
    "rows": 40,
    "detector_rows": 20,
    "batch_size": 4,
    "detector_batch_size": 4,
    "loader_seconds": 2.0,
    "image_shape": (120, 90),
    "unique_images": 8,
    "detector_options": {
        "rpn_pre_nms_top_n_train": 50,
        "rpn_post_nms_top_n_train": 20,
        "rpn_pre_nms_top_n_test": 50,
        "rpn_post_nms_top_n_test": 10,
        "box_batch_size_per_image": 16,
        "box_detections_per_img": 10,
        "box_representation_size": 64,
        "mask_roi_size": 7,
        "mask_head_layers": 1,
    },
}


def emit(figure: str, **values) -> None:
    print(json.dumps({"figure": figure, **values}), flush=True)


class Timer:
    """CUDA events on a GPU (the time the GPU spent, without host-side noise), perf_counter on CPU."""

    def __init__(self, device):
        import torch

        self.cuda = device.type == "cuda"
        self.torch = torch

    def __enter__(self):
        if self.cuda:
            self.start, self.end = (self.torch.cuda.Event(enable_timing=True) for _ in range(2))
            self.start.record()
        else:
            self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            self.end.record()
            self.end.synchronize()
            self.seconds = self.start.elapsed_time(self.end) / 1000
        else:
            self.seconds = time.perf_counter() - self.t0


# --- data ---------------------------------------------------------------------------------------


def synthetic_train_none(folder: Path, rows: int, unique: int, shape) -> Path:
    """``train_none.h5`` of ``rows`` JPEG rows (quality 90) cycling through ``unique`` distinct images:
    each row is read and decoded on its own, so repeats cost the loader what distinct images do."""
    from PIL import Image

    from benchmarks.loader import synthetic_images
    from generator import CLASSES
    from generator.variants.store import Row, encode_mask, write_variant

    encoded = []
    for image, mask, _ in synthetic_images(unique, shape):
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="JPEG", quality=90)
        encoded.append((buf.getvalue(), encode_mask(mask), encode_mask(np.zeros_like(mask))))
    table = [
        Row(
            f"ISIC_{i:07d}",
            f"HAM_{i:07d}",
            i % len(CLASSES),
            *encoded[i % unique],
            has_artefact=False,
            metadata={"dx": CLASSES[i % len(CLASSES)]},
        )
        for i in range(rows)
    ]
    path = write_variant(
        folder / TRAIN_FILE,
        table,
        rows,
        {
            "variant": {"name": CLEAN_TRAIN},
            "split": "train",
            "seed": 0,
            "source_fingerprint": "benchmark",
            "templates": "none",
        },
    )
    from generator.variants.manifest import write_manifest_of_files

    write_manifest_of_files(folder)  # consumers read a data folder only through its manifest
    return path


# --- figures ------------------------------------------------------------------------------------


def versions(device) -> None:
    import platform

    import torch
    import torchvision
    from torchvision.ops import batched_nms

    g = torch.Generator().manual_seed(0)
    xy = torch.rand(4000, 2, generator=g) * 400
    boxes = torch.cat([xy, xy + 8 + torch.rand(4000, 2, generator=g) * 40], dim=1)
    scores = torch.rand(4000, generator=g)
    classes = torch.randint(0, 8, (4000,), generator=g)
    keep_cpu = batched_nms(boxes, scores, classes, 0.5)
    keep_dev = batched_nms(boxes.to(device), scores.to(device), classes.to(device), 0.5).cpu()
    values = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "device": str(device),
        "nms_device_matches_cpu": bool(torch.equal(keep_cpu, keep_dev)),
        "nms_kept": int(len(keep_cpu)),
    }
    if device.type == "cuda":
        values.update(
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            card=torch.cuda.get_device_name(device),
            capability=".".join(map(str, torch.cuda.get_device_capability(device))),
        )
    emit("versions", **values)


def _ceiling_row(device, batch_size: int, sizes: dict, deadline: float) -> dict:
    """Bare loop and engine loop body at one batch size, on 4 pre-made uint8 batches resident on the device."""
    import torch
    import torch.nn.functional as F
    from torchvision.transforms.v2.functional import to_dtype

    from training.models import build_model
    from training.run.engine import LossTracker, amp_scope, train_step

    cuda = device.type == "cuda"
    size = sizes["image_size"]
    torch.manual_seed(0)
    model = build_model("resnet34").to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    model.train()
    batches = [
        {
            "image": torch.randint(0, 256, (batch_size, 3, size, size), dtype=torch.uint8, device=device),
            "label": torch.randint(0, 7, (batch_size,), device=device),
        }
        for _ in range(4)
    ]

    def bare(batch):
        images = to_dtype(batch["image"], torch.float32, scale=True)
        if cuda:
            images = images.contiguous(memory_format=torch.channels_last)
        with amp_scope(model, "resnet34", device.type, cuda):
            loss = F.cross_entropy(model(images).float(), batch["label"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    tracker = LossTracker(device)

    def engine(batch):
        tracker.add(train_step(model, "resnet34", batch, optimizer, device, cuda, cuda, grad_clip=10.0))

    row = {"batch_size": batch_size}
    for name, body in (("bare", bare), ("engine", engine)):
        for step in range(sizes["warmup"]):  # cuDNN autotuning, the allocator's first blocks
            body(batches[step % 4])
        steps = sizes["ceiling_steps"]
        with Timer(device) as timer:
            for step in range(steps):
                body(batches[step % 4])
                if time.monotonic() > deadline:
                    steps = step + 1
                    break
        row[f"{name}_images_per_s"] = round(steps * batch_size / timer.seconds, 1)
    tracker.mean()  # raises unless the engine's losses were finite
    row["engine_over_bare"] = round(row["engine_images_per_s"] / row["bare_images_per_s"], 3)
    if cuda:
        row["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        torch.cuda.reset_peak_memory_stats(device)
    return row


def ceiling(device, sizes: dict, deadline: float) -> None:
    import torch

    cuda = device.type == "cuda"
    torch.backends.cudnn.benchmark = cuda  # as train() sets it for the classifier
    rows = [_ceiling_row(device, batch_size, sizes, deadline) for batch_size in sizes["batch_sizes"]]
    emit(
        "ceiling",
        arch="resnet34",
        image_size=sizes["image_size"],
        amp_bf16=cuda,
        channels_last=cuda,
        timer="cuda events" if cuda else "perf_counter",
        batch_sizes=list(sizes["batch_sizes"]),
        batches=rows,
    )


def loader(device, data: Path, sizes: dict, worker_counts, deadline: float) -> None:
    from training.data.batches import training_targets
    from training.data.datasets import HAMArtefacts
    from training.data.transforms import train_transform
    from training.run.engine import TrainConfig, train_loader

    size = sizes["image_size"]
    rows = []
    for workers in worker_counts:
        dataset = HAMArtefacts(
            data,
            CLEAN_TRAIN,
            target_types=training_targets(),
            transforms=train_transform(size, float_output=False),
            decode_size=size,
        )
        config = TrainConfig(arch="resnet34", data=str(data), batch_size=sizes["batch_size"], workers=workers)
        loader_, sampler = train_loader(dataset, config, device)
        row = {"workers": workers}
        for epoch in range(2):
            sampler.set_epoch(epoch)
            t0 = time.perf_counter()
            seen, t_first = 0, None
            limit = min(deadline, time.monotonic() + sizes["loader_seconds"])
            for batch in loader_:
                if t_first is None:
                    t_first = time.perf_counter()
                    row["first_batch_s" if epoch == 0 else "second_epoch_first_batch_s"] = round(
                        t_first - t0, 3
                    )
                    if epoch == 1:
                        break
                    continue
                seen += len(batch["label"])
                if time.monotonic() > limit:
                    break
            if epoch == 0:
                row["steady_images_per_s"] = round(seen / max(time.perf_counter() - t_first, 1e-9), 1)
                row["steady_images"] = seen
        rows.append(row)
        del loader_  # its persistent workers end with it
    emit(
        "loader",
        image_size=size,
        batch_size=sizes["batch_size"],
        uint8=True,
        persistent=True,
        pin_memory=device.type == "cuda",
        rows_in_file=len(dataset),
        workers=rows,
    )


def _log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines() if line.strip()]


def _config(
    arch: str, data: Path, sizes: dict, workers: int, device, rows: int, epochs: int, subsample: bool
):
    from training.run.engine import TrainConfig

    detector = arch != "resnet34"
    values = {
        "arch": arch,
        "data": str(data),
        "epochs": epochs,
        "workers": workers,
        "predict": False,
        "device": str(device),
        "image_size": sizes["detector_size" if detector else "image_size"],
        "batch_size": sizes["detector_batch_size" if detector else "batch_size"],
        "lr": 0.01,
        "optimizer": "sgd",
        "checkpoint_every": 10,
        "patience": 10,
    }
    if detector:
        values["detector_options"] = sizes["detector_options"]
    if subsample:  # about ``rows`` rows of a larger file, split as a fold would (4/5 train, 1/5 validate)
        values.update(max_train_images=rows * 4 // 5, max_val_images=rows // 5)
    return TrainConfig(**values)


def train_resnet34(device, data: Path, sizes: dict, workers: int, tmp: Path, real_data: bool) -> None:
    import torch

    from training.run.engine import train

    config = _config("resnet34", data, sizes, workers, device, sizes["rows"], 2, real_data)  # the file's rows
    straight = tmp / "runs" / "resnet34-straight"
    t0 = time.perf_counter()
    train(config, straight, progress=False)
    wall = time.perf_counter() - t0
    log = _log(straight)

    killed = tmp / "runs" / "resnet34-killed"
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(asdict(config)), str(killed)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    line = child.stdout.readline()  # "training" once the first step ran: the handlers are in place
    if line.strip() != "training":
        child.kill()
        raise RuntimeError(f"child did not start training: {line!r}")
    child.send_signal(signal.SIGTERM)
    child.stdout.close()  # not read to its end: forked loader workers hold the pipe until they notice
    code = child.wait(timeout=600)
    killed_epochs = torch.load(killed / "last.pt", map_location="cpu", weights_only=True)["epoch"]
    t0 = time.perf_counter()
    train(config, killed, progress=False)
    resume_wall = time.perf_counter() - t0
    a = torch.load(straight / "last.pt", map_location="cpu", weights_only=True)["model"]
    b = torch.load(killed / "last.pt", map_location="cpu", weights_only=True)["model"]
    diff = max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())
    emit(
        "train_resnet34",
        rows=_row_count(data),
        workers=workers,
        image_size=config.image_size,
        batch_size=config.batch_size,
        epochs=len(log),
        images_per_s=round(max(r["train_images_per_s"] for r in log), 1),
        epoch_images_per_s=[round(r["train_images_per_s"], 1) for r in log],
        epoch_seconds=[round(r["seconds"], 2) for r in log],
        wall_s=round(wall, 1),
        killed_exit=code,
        killed_after_epochs=killed_epochs,
        resume_wall_s=round(resume_wall, 1),
        resumed_epochs=[r["epoch"] for r in _log(killed)],
        resume_max_abs_weight_diff=diff,
    )


def _row_count(data: Path) -> int:
    from generator.variants.store import VariantReader

    with VariantReader(data / TRAIN_FILE) as reader:
        return len(reader)


def _detector_amp_cost(arch: str, device, sizes: dict) -> dict:
    """Milliseconds per training step (one pre-made batch on the device) with bf16 autocast over the
    backbone only (what the engine does) and over the whole detector: the price of float32 heads."""
    import torch

    from training.models import build_model
    from training.run.engine import amp_scope

    size, n = sizes["detector_size"], sizes["detector_batch_size"]
    torch.manual_seed(0)
    model = build_model(arch, image_size=size, detector_options=sizes["detector_options"]).to(device).train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.001, momentum=0.9)
    images = [torch.rand(3, size, size, device=device) for _ in range(n)]
    lo, hi = size // 4, 3 * size // 4
    mask = torch.zeros(1, size, size, dtype=torch.uint8, device=device)
    mask[:, lo:hi, lo:hi] = 1
    targets = [
        {
            "boxes": torch.tensor([[lo, lo, hi, hi]], dtype=torch.float32, device=device),
            "labels": torch.tensor([1 + i % 7], device=device),
            "masks": mask,
        }
        for i in range(n)
    ]

    def step(whole: bool):
        scope = (
            torch.autocast(device.type, dtype=torch.bfloat16)
            if whole
            else amp_scope(model, arch, device.type, True)
        )
        with scope:
            losses = model(images, targets)
        optimizer.zero_grad(set_to_none=True)
        sum(v.float() for v in losses.values()).backward()
        optimizer.step()

    result = {}
    for whole in (False, True):
        for _ in range(sizes["warmup"] // 2):  # (none in the smoke run: CPU bf16 steps are slow)
            step(whole)
        steps = max(1, sizes["ceiling_steps"] // 4)
        with Timer(device) as timer:
            for _ in range(steps):
                step(whole)
        result["amp_whole_step_ms" if whole else "amp_backbone_step_ms"] = round(
            1000 * timer.seconds / steps, 1
        )
    result["amp_backbone_over_whole_time"] = round(
        result["amp_backbone_step_ms"] / result["amp_whole_step_ms"], 3
    )
    return result


def train_detector(
    arch: str, device, data: Path, sizes: dict, workers: int, tmp: Path, real_data: bool
) -> None:
    import torch

    from training.run.engine import train

    config = _config(
        arch, data, sizes, workers, device, sizes["detector_rows"], 1, real_data or sizes is SMOKE
    )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    train(config, tmp / "runs" / arch, progress=False)
    wall = time.perf_counter() - t0
    log = _log(tmp / "runs" / arch)
    values = {
        "image_size": config.image_size,
        "batch_size": config.batch_size,
        "workers": workers,
        "amp": "bf16 backbone only" if device.type == "cuda" else None,
        "images_per_s": round(log[-1]["train_images_per_s"], 1),
        "epoch_seconds": round(log[-1]["seconds"], 2),
        "wall_s": round(wall, 1),
    }
    if device.type == "cuda":
        values["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    values.update(_detector_amp_cost(arch, device, sizes))
    emit(f"train_{arch}", **values)


def child(config_json: str, run_dir: str) -> int:
    """The run the benchmark kills: train() with a note on stdout once the first step has run."""
    from training.run import engine

    real_step = engine.train_step
    started = []

    def step(*args, **kwargs):
        loss = real_step(*args, **kwargs)
        if not started:
            started.append(True)
            print("training", flush=True)
        return loss

    engine.train_step = step
    engine.train(engine.TrainConfig.from_dict(json.loads(config_json)), run_dir, progress=False)
    return 0


# --- main ---------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="data folder with train_none.h5 (default: a synthetic one)")
    parser.add_argument(
        "--deadline", type=float, default=540.0, help="seconds for the whole run (default 540)"
    )
    parser.add_argument(
        "--workers", type=int, nargs="+", help="loader worker counts (default 8 14; smoke 0 2)"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; runs on CPU when no GPU exists")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(*args.child)
    deadline = time.monotonic() + args.deadline

    import torch

    if args.data and not (Path(args.data) / TRAIN_FILE).is_file():
        print(f"{args.data}: no {TRAIN_FILE}", file=sys.stderr)
        return 2
    if not torch.cuda.is_available() and not args.smoke:
        print("no CUDA GPU available: GPU benchmark skipped (--smoke runs it on the CPU at tiny sizes)")
        return 0
    device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    sizes = SMOKE if args.smoke else FULL
    worker_counts = args.workers or ((0, 2) if args.smoke else (8, 14))
    train_workers = max(worker_counts)
    failed = False

    def run(name: str, needs_s: float, fn, *fn_args) -> None:
        nonlocal failed
        left = deadline - time.monotonic()
        if left < needs_s:
            emit(name, skipped=f"deadline: {left:.0f} s left, needs about {needs_s:.0f} s")
            return
        try:
            fn(*fn_args)
        except Exception as exc:  # one figure's failure must not cost the others
            failed = True
            emit(name, error=f"{type(exc).__name__}: {exc}")

    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as tmp:
        tmp = Path(tmp)
        run("versions", 0, versions, device)
        real_data = args.data is not None
        if real_data:
            data = Path(args.data)
        else:
            data = tmp / "data"
            data.mkdir()
            synthetic_train_none(data, sizes["rows"], sizes["unique_images"], sizes["image_shape"])
        small = tmp / "small"  # the detectors' ~512 rows (synthetic: a file of that size)
        if real_data or sizes is SMOKE:  # (5 grouped folds need 5+ rows a class)
            small = data
        else:
            small.mkdir()
            synthetic_train_none(small, sizes["detector_rows"], sizes["unique_images"], sizes["image_shape"])
        run("ceiling", 20, ceiling, device, sizes, deadline)
        run("loader", 20, loader, device, data, sizes, worker_counts, deadline)
        run("train_resnet34", 60, train_resnet34, device, data, sizes, train_workers, tmp, real_data)
        for arch in ("fasterrcnn_resnet34", "maskrcnn_resnet34"):
            run(
                f"train_{arch}", 30, train_detector, arch, device, small, sizes, train_workers, tmp, real_data
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
