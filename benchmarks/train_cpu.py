"""Benchmark: ResNet-34 CPU training throughput (images/s) per precision / memory-format mode.

One training step is forward, cross-entropy, backward and an AdamW step on a batch of random
uint8-like images scaled to [0, 1] with random labels of the 7 classes (no data files). The network
is the one the engine trains, built by the registry: ``build_model("resnet34", image_size=size)``.

Modes (``--modes``):

* ``fp32``: eager fp32, the baseline every ratio is taken against;
* ``bf16``: ``torch.autocast("cpu", dtype=torch.bfloat16)`` around forward and loss;
* ``bf16_cl``: bf16 autocast with model and input in ``torch.channels_last``;
* ``fp32_cl``: fp32 with model and input in ``torch.channels_last``.

Shared machines drift by 2x within minutes, so all modes are measured in the same process, alternating
within each round, for ``--repeat`` rounds. Each measurement runs ``--warmup`` untimed steps, then
times ``--steps`` steps. The table gives the median img/s with its range over rounds, and the median
of the per-round ratios against ``fp32`` of the same round and size.

    python benchmarks/train_cpu.py [--sizes 64 128] [--modes fp32 bf16 bf16_cl fp32_cl]
                                   [--repeat 3] [--steps 10] [--warmup 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from generator import CLASSES  # noqa: E402
from training.models import build_model  # noqa: E402

BATCH = 32
BASELINE = "fp32"


@dataclass(frozen=True)
class Mode:
    name: str
    bf16: bool
    channels_last: bool
    label: str


MODES: dict[str, Mode] = {
    m.name: m
    for m in (
        Mode("fp32", bf16=False, channels_last=False, label="eager fp32"),
        Mode("bf16", bf16=True, channels_last=False, label="bf16 autocast"),
        Mode("bf16_cl", bf16=True, channels_last=True, label="bf16 + channels_last"),
        Mode("fp32_cl", bf16=False, channels_last=True, label="fp32 channels_last"),
    )
}


def cpu_bf16_report() -> str:
    """What the CPU and torch say about native bf16, so a reader knows where the figures come from."""
    flags: set[str] = set()
    model_name = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "flags" and not flags:
                flags = set(value.split())
            elif key.strip() == "model name":
                model_name = value.strip()
    native = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    return (
        f"CPU: {model_name}; native bf16 flags: {', '.join(native) or 'none (no avx512_bf16/amx_bf16)'}; "
        f"mkldnn available: {torch.backends.mkldnn.is_available()}"
    )


class Trainer:
    """One model + AdamW + fixed random batch for one (size, mode); ``run(n)`` returns img/s."""

    def __init__(self, size: int, mode: Mode, seed: int = 0):
        torch.manual_seed(seed)
        fmt = torch.channels_last if mode.channels_last else torch.contiguous_format
        self.mode = mode
        self.model: nn.Module = build_model("resnet34", image_size=size).to(memory_format=fmt).train()
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-3)
        pixels = torch.randint(0, 256, (BATCH, 3, size, size), dtype=torch.uint8)
        self.images = (pixels.float() / 255.0).contiguous(memory_format=fmt)
        self.labels = torch.randint(0, len(CLASSES), (BATCH,))
        self.loss_fn = nn.CrossEntropyLoss()

    def step(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if self.mode.bf16 else contextlib.nullcontext()
        with autocast:
            loss = self.loss_fn(self.model(self.images), self.labels)
        loss.backward()
        self.optimizer.step()

    def run(self, warmup: int, steps: int) -> float:
        for _ in range(warmup):
            self.step()
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        return steps * BATCH / (time.perf_counter() - start)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "ResNet-34 CPU training throughput (img/s, batch 32, AdamW, 7 classes, random inputs) for "
            "eager fp32 against bf16 autocast and channels_last, measured interleaved in one process "
            "over --repeat rounds; prints median [min-max] and the median per-round ratio vs eager fp32."
        )
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128], help="input sizes in px")
    parser.add_argument(
        "--modes", nargs="+", choices=list(MODES), default=list(MODES), help="modes to measure"
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds (modes alternate within each)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before each measurement")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    args = parser.parse_args(argv)
    for name in ("repeat", "steps", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.warmup < 0 or any(s < 32 for s in args.sizes):
        parser.error("--warmup must be >= 0 and --sizes >= 32")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; torch {torch.__version__}; threads {args.threads}")
    print(cpu_bf16_report())
    print(
        f"batch {BATCH}, {args.repeat} rounds x ({args.warmup} warm-up + {args.steps} timed steps) per mode"
    )

    modes = [MODES[name] for name in dict.fromkeys(args.modes)]
    rates: dict[tuple[int, str], list[float]] = {}
    ratios: dict[tuple[int, str], list[float]] = {}
    for size in args.sizes:
        trainers = {mode.name: Trainer(size, mode) for mode in modes}
        for round_no in range(args.repeat):
            # Rotate the order each round so no mode always runs first (after a cold or idle spell).
            order = modes[round_no % len(modes) :] + modes[: round_no % len(modes)]
            this_round = {mode.name: trainers[mode.name].run(args.warmup, args.steps) for mode in order}
            for name, rate in this_round.items():
                rates.setdefault((size, name), []).append(rate)
                if BASELINE in this_round:
                    ratios.setdefault((size, name), []).append(rate / this_round[BASELINE])
            print(
                f"  {size} px round {round_no + 1}: "
                + ", ".join(f"{name} {rate:.1f}" for name, rate in this_round.items()),
                flush=True,
            )

    print()
    print(f"| size | mode | img/s median [min-max] | ratio vs {MODES[BASELINE].label} |")
    print("|---|---|---|---|")
    for size in args.sizes:
        for mode in modes:
            r = rates[(size, mode.name)]
            ratio = ratios.get((size, mode.name))
            ratio_text = f"{statistics.median(ratio):.2f}x" if ratio else "n/a (fp32 not measured)"
            print(
                f"| {size} px | {mode.label} | {statistics.median(r):.1f} [{min(r):.1f}-{max(r):.1f}] "
                f"| {ratio_text} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
