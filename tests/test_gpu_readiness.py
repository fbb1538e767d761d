"""The CUDA path's logic, checked on CPU: resume across devices, loader seeds (ranks, persistent workers),
the host-sync-free step, detector autocast scope, DDP set-up order, checkpoint cadence and stop on signal,
prediction without hashing, and `benchmarks/gpu.py --smoke`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("sklearn")

from helpers.training import small_cnn as _small_cnn  # noqa: E402
from helpers.training import (  # noqa: E402
    synthetic_rows,
    write_data_manifest,
    write_synthetic_data,
    write_synthetic_variant,
)

from generator.errors import RunFailed  # noqa: E402
from generator.variants import ALL_TEST, CLEAN_TEST, CLEAN_TRAIN  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _config(data_dir, **changes):
    from training.run.engine import TrainConfig

    values = {
        "arch": "small_cnn",
        "data": str(data_dir),
        "image_size": 32,
        "epochs": 3,
        "batch_size": 8,
        "optimizer": "sgd",
        "lr": 0.05,
        "max_train_images": 24,
        "workers": 0,
        "predict": False,
        "seed": 5,
    }
    return TrainConfig(**{**values, **changes})


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_ready")
    write_synthetic_variant(out / f"{CLEAN_TRAIN}.h5", synthetic_rows(40, "train"), CLEAN_TRAIN)
    write_data_manifest(out)
    return out


@pytest.fixture
def small_cnn(monkeypatch):
    from training.models import MODELS

    monkeypatch.setitem(MODELS, "small_cnn", _small_cnn)


# --- 1. resume from a checkpoint written on another device ---------------------------------------


def test_resume_loads_a_checkpoint_written_on_cuda_onto_the_device(tmp_path, monkeypatch):
    """A checkpoint whose tensors were saved on cuda:0: weights, optimizer and scheduler load, and both
    RNG states reach set_rng_state as CPU ByteTensors (the only kind it accepts)."""
    from training.run import engine

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=5)
    model(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    scheduler.step()
    cpu_state = torch.get_rng_state()
    fake_cuda_state = torch.randint(0, 255, (16,), dtype=torch.uint8)
    checkpoint = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": {"torch": cpu_state, "cuda": fake_cuda_state},
        "epoch": 2,
        "best_metric": 0.5,
        "best_epoch": 1,
        "epochs_without_improvement": 1,
    }
    path = tmp_path / "last.pt"
    with monkeypatch.context() as m:  # every storage recorded as living on cuda:0, as a GPU run writes them
        m.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save(checkpoint, path)
    if not torch.cuda.is_available():  # the simulation is faithful: only a remap to the CPU can read it
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)

    received = {}

    def strict(name):
        def set_state(state, *device):
            if not (
                isinstance(state, torch.Tensor) and state.device.type == "cpu" and state.dtype == torch.uint8
            ):
                raise TypeError("RNG state must be a torch.ByteTensor")
            received[name] = (state.clone(), device)

        return set_state

    monkeypatch.setattr(torch, "set_rng_state", strict("cpu"))
    monkeypatch.setattr(torch.cuda, "set_rng_state", strict("cuda"))
    fresh = torch.nn.Linear(4, 3)
    fresh_optimizer = torch.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9)
    fresh_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(fresh_optimizer, T_max=5)
    state = engine.resume_from(path, fresh, fresh_optimizer, fresh_scheduler, torch.device("cuda", 0))

    assert state == {"epoch": 2, "best_metric": 0.5, "best_epoch": 1, "epochs_without_improvement": 1}
    assert all(
        torch.equal(a, b)
        for a, b in zip(fresh.state_dict().values(), model.state_dict().values(), strict=True)
    )
    momentum = [fresh_optimizer.state[p]["momentum_buffer"] for p in fresh.parameters()]
    assert all(
        torch.equal(a, optimizer.state[p]["momentum_buffer"])
        for a, p in zip(momentum, model.parameters(), strict=True)
    )
    assert fresh_scheduler.last_epoch == 1
    assert torch.equal(received["cpu"][0], cpu_state)
    assert torch.equal(received["cuda"][0], fake_cuda_state) and received["cuda"][1] == (
        torch.device("cuda", 0),
    )


def test_a_cpu_started_run_may_resume_on_a_gpu_but_not_with_another_experiment():
    from dataclasses import asdict

    from training.run.config import TrainConfig, comparable

    config = asdict(TrainConfig(arch="resnet34", data="data"))
    on_cpu = {
        **config,
        "device": "cpu",
        "amp_dtype": None,
        "torch": "2.14.1",
        "world_size": 1,
        "pretrained": False,
        "weights_file": None,
        "workers": 0,
    }
    on_gpu = {
        **config,
        "device": "cuda:0",
        "amp_dtype": "bfloat16",
        "torch": "2.11.0",
        "world_size": 1,
        "pretrained": False,
        "weights_file": None,
        "workers": 14,
        "checkpoint_every": 2,
    }
    assert comparable(on_cpu) == comparable(on_gpu)
    for field, value in (("lr", 0.1), ("pretrained", True), ("world_size", 2), ("seed", 1)):
        assert comparable(on_cpu) != comparable({**on_gpu, field: value}), field


# --- 3, 7. loader seeds: per rank, per (epoch, row), persistent workers ---------------------------


def test_loader_seeds_depend_on_rank_and_ranks_draw_disjoint_rows():
    from torch.utils.data.distributed import DistributedSampler

    from training.run.engine import SampleSeeds, loader_seed

    assert len({loader_seed(0, e, r) for e in range(3) for r in range(4)}) == 12
    data = list(range(20))
    drawn = []
    for rank in (0, 1):
        sampler = SampleSeeds(
            DistributedSampler(data, num_replicas=2, rank=rank, shuffle=True, seed=3, drop_last=True), seed=3
        )
        sampler.set_epoch(1)
        drawn.append(list(sampler))
    positions = [{p for p, _ in d} for d in drawn]
    seeds = [{s for _, s in d} for d in drawn]
    assert not positions[0] & positions[1] and len(positions[0] | positions[1]) == 20
    assert not seeds[0] & seeds[1]


def _epoch_images(loader, sampler, epoch):
    """{row: image} of one epoch, in the order the loader gave them."""
    sampler.set_epoch(epoch)
    images = {}
    for batch in loader:
        for index, image in zip(batch["index"].tolist(), batch["image"], strict=True):
            images[index] = image
    return images


def test_persistent_workers_draw_new_augmentations_each_epoch_and_match_a_fresh_loader(train_dir):
    """Per-(seed, epoch, row) seeds: two persistent workers give each epoch new augmentations, and the
    very images, in the very order, that a fresh main-process loader gives for that epoch (what a
    resumed run reads)."""
    from torch.utils.data import Subset

    from training.data.batches import training_targets
    from training.data.datasets import HAMArtefacts
    from training.data.transforms import train_transform
    from training.run.engine import train_loader

    variant = HAMArtefacts(
        train_dir,
        "train_none",
        target_types=training_targets(),
        transforms=train_transform(32, float_output=False),
        decode_size=32,
    )
    dataset = Subset(variant, np.arange(12))
    cpu = torch.device("cpu")
    loader, sampler = train_loader(dataset, _config(train_dir, workers=2, batch_size=4), cpu, drop_last=False)
    assert loader.persistent_workers and loader.num_workers == 2
    first = _epoch_images(loader, sampler, 0)
    workers = loader._iterator
    second = _epoch_images(loader, sampler, 1)
    assert loader._iterator is workers  # the same worker processes served both epochs
    assert sorted(first) == sorted(second) == list(range(12)) and list(first) != list(second)  # reshuffled
    assert sum(not torch.equal(first[i], second[i]) for i in first) >= 10  # new augmentations

    loader0, sampler0 = train_loader(
        dataset, _config(train_dir, workers=0, batch_size=4), cpu, drop_last=False
    )
    again = _epoch_images(loader0, sampler0, 1)
    assert list(again) == list(second)  # the same order: the shuffle does not depend on the loader's state
    assert all(torch.equal(again[i], second[i]) for i in second)


# --- 4. the host-sync-free step ------------------------------------------------------------------


def _fake_batch(n=4, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "image": torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g),
        "label": torch.randint(0, 7, (n,), generator=g),
    }


def test_training_steps_read_nothing_back_until_the_sync_point(monkeypatch):
    from training.run.engine import LossTracker, train_step

    torch.manual_seed(0)
    model = _small_cnn()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    batches = [_fake_batch(seed=s) for s in range(6)]
    reads = []
    for name in ("item", "__bool__", "tolist", "numpy", "__float__", "__int__"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            reads.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)

    tracker = LossTracker(torch.device("cpu"), sync_every=3, what="run")
    cpu = torch.device("cpu")
    running = []
    for step, batch in enumerate(batches):
        loss = train_step(model, "resnet34", batch, optimizer, cpu, amp=False, grad_clip=10.0)
        running.append(tracker.add(loss))
        assert len(reads) == (step + 1) // 3, (step, reads)  # one read per 3 steps, none in between
    mean = tracker.mean()
    monkeypatch.undo()
    assert running[0] is None and running[1] is None and np.isfinite(running[2]) and np.isfinite(mean)


def test_a_non_finite_loss_is_an_error_naming_the_run_at_the_sync_point(
    tmp_path, train_dir, small_cnn, monkeypatch
):
    from training.run import engine

    tracker = engine.LossTracker(torch.device("cpu"), sync_every=3, what="runs/x epoch 1")
    assert tracker.add(torch.tensor(1.0)) is None
    assert tracker.add(torch.tensor(float("nan"))) is None  # not read yet: no sync
    with pytest.raises(RunFailed, match=r"runs/x epoch 1: non-finite loss at step 1\.\.3"):
        tracker.add(torch.tensor(1.0))

    from training.run import steps

    calls = []
    real_loss = steps.training_loss

    def diverging(*args, **kwargs):
        calls.append(1)
        loss = real_loss(*args, **kwargs)
        return loss * float("inf") if len(calls) == 5 else loss  # epoch 2's second step

    monkeypatch.setattr(steps, "training_loss", diverging)  # what engine.train_step calls
    run = tmp_path / "diverged"
    with pytest.raises(
        RunFailed, match=re.escape(f"{run} (small_cnn train_none fold 0) epoch 2: non-finite loss")
    ):
        engine.train(_config(train_dir, checkpoint_every=1), run, progress=False)
    assert len(calls) == 6  # 3 steps an epoch: caught at epoch 2's end, the one sync of a short epoch
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 1  # the diverged epoch is never saved


# --- 6. bf16 autocast: the detector's backbone only ----------------------------------------------


def test_detector_autocast_covers_the_backbone_only():
    from training.models import build_model
    from training.run.engine import amp_scope

    tiny = {
        "rpn_pre_nms_top_n_train": 50,
        "rpn_post_nms_top_n_train": 20,
        "box_batch_size_per_image": 16,
        "box_representation_size": 64,
        "mask_roi_size": 7,
        "mask_head_layers": 1,
    }
    torch.manual_seed(0)
    model = build_model("maskrcnn_resnet34", image_size=64, detector_options=tiny).train()
    dtypes = {}

    def record(name):
        def hook(module, inputs, output):
            tensor = (
                output
                if isinstance(output, torch.Tensor)
                else (inputs[0][0] if isinstance(inputs[0], list) else output[0])
            )
            dtypes[name] = tensor.dtype

        return hook

    model.backbone.body.layer2.register_forward_hook(record("backbone"))
    model.rpn.head.register_forward_hook(record("rpn"))
    model.roi_heads.box_predictor.register_forward_hook(record("box_predictor"))
    model.roi_heads.mask_predictor.register_forward_hook(record("mask_predictor"))
    images = [torch.rand(3, 64, 64) for _ in range(2)]
    targets = [
        {
            "boxes": torch.tensor([[8.0, 8.0, 40.0, 40.0]]),
            "labels": torch.tensor([3]),
            "masks": torch.zeros(1, 64, 64, dtype=torch.uint8),
        }
        for _ in range(2)
    ]
    with amp_scope(model, "maskrcnn_resnet34", "cpu", enabled=True):
        losses = model(images, targets)
    assert dtypes["backbone"] == torch.bfloat16
    assert dtypes["rpn"] == dtypes["box_predictor"] == dtypes["mask_predictor"] == torch.float32
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
    assert "forward" not in vars(model.backbone)  # the patch is gone, the module tree untouched

    classifier = _small_cnn()
    with amp_scope(classifier, "resnet34", "cpu", enabled=True):
        assert classifier(torch.rand(2, 3, 16, 16)).dtype == torch.bfloat16
    with amp_scope(classifier, "resnet34", "cpu", enabled=False):
        assert classifier(torch.rand(2, 3, 16, 16)).dtype == torch.float32


# --- 7. DDP set-up -------------------------------------------------------------------------------


@pytest.mark.parametrize("spec, backend", [("cuda", "nccl"), ("auto", "nccl"), ("cpu", "gloo")])
def test_ddp_sets_the_device_before_nccl_and_uses_gloo_for_cpu(spec, backend, monkeypatch):
    import torch.distributed as dist

    from training.run.engine import init_distributed

    calls = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(
        torch.cuda, "set_device", lambda device: calls.append(("set_device", torch.device(device)))
    )
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(
        dist,
        "init_process_group",
        lambda backend, **kwargs: calls.append(("init", backend, kwargs.get("device_id"))),
    )
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    result = init_distributed(spec)
    assert (result.rank, result.world_size, result.local_rank) == (1, 2, 1)
    if backend == "nccl":
        assert calls == [("set_device", torch.device("cuda", 1)), ("init", "nccl", torch.device("cuda", 1))]
    else:
        assert calls == [("init", "gloo", None)]


# --- 8. checkpoint cadence, stop at an epoch boundary on a signal ---------------------------------


def test_last_pt_is_written_every_n_epochs_and_a_signal_stops_at_an_epoch_boundary(
    tmp_path, train_dir, small_cnn, monkeypatch, sigint_raises
):
    from training.run import checkpoint, engine

    saved = []
    real_save = checkpoint.save_checkpoint
    monkeypatch.setattr(
        checkpoint, "save_checkpoint", lambda obj, path: (saved.append(Path(path).name), real_save(obj, path))
    )
    straight = engine.train(
        _config(train_dir, epochs=5, checkpoint_every=2), tmp_path / "straight", progress=False
    )
    assert straight["epochs_run"] == 5
    assert saved.count("last.pt") == 3  # epochs 2, 4 and the end (5)
    assert torch.load(tmp_path / "straight" / "last.pt", weights_only=True)["epoch"] == 5

    # SIGINT during epoch 2 (step 5 of 3-step epochs): epoch 2 finishes, last.pt holds it, then the
    # signal is delivered (KeyboardInterrupt), although checkpoint_every would not write epoch 2
    steps = []
    real_step = engine.train_step

    def step(*args, **kwargs):
        steps.append(1)
        if len(steps) == 5:
            signal.raise_signal(signal.SIGINT)
        return real_step(*args, **kwargs)

    monkeypatch.setattr(engine, "train_step", step)
    previous = signal.getsignal(signal.SIGINT)
    run = tmp_path / "signalled"
    with pytest.raises(KeyboardInterrupt):
        engine.train(_config(train_dir, epochs=5, checkpoint_every=4), run, progress=False)
    assert signal.getsignal(signal.SIGINT) is previous
    assert len(steps) == 6 and torch.load(run / "last.pt", weights_only=True)["epoch"] == 2
    monkeypatch.setattr(engine, "train_step", real_step)
    resumed = engine.train(_config(train_dir, epochs=5, checkpoint_every=4), run, progress=False)
    assert resumed["epochs_run"] == 5
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)["model"]
    b = torch.load(run / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit-exact on CPU
    assert [json.loads(line)["epoch"] for line in (run / "log.jsonl").read_text().splitlines()] == [
        1,
        2,
        3,
        4,
        5,
    ]


# --- 8. predictions: no hashing pass, channels_last model -----------------------------------------


def test_predictions_never_read_image_bytes_to_find_shared_images(tmp_path, monkeypatch):
    from generator.variants.store import VariantReader
    from training.run.predict import predict_variants, read_predictions

    data = write_synthetic_data(tmp_path / "data", n_train=2, n_test=6, train_variants=())
    monkeypatch.setattr(
        VariantReader, "image_bytes", lambda self, i: pytest.fail("image bytes read for a key")
    )
    seen = []
    model = _small_cnn().eval()
    model.register_forward_pre_hook(lambda module, inputs: seen.append(len(inputs[0])))
    written = predict_variants(model, "resnet34", data, tmp_path / "pred", 32, batch_size=64, progress=False)
    assert len(written) == 13
    assert sum(seen) == 12  # 6 clean images + the same 6 with their artefact: each predicted once
    clean, everywhere = (read_predictions(tmp_path / "pred" / f"{v}.csv") for v in (CLEAN_TEST, ALL_TEST))
    assert not np.allclose(clean["score_akiec"], everywhere["score_akiec"])
    test_40 = read_predictions(tmp_path / "pred" / "test_40.csv")
    pick = test_40["has_artefact"] == 0
    assert 0 < pick.sum() < 6 and np.array_equal(
        test_40.loc[pick, "score_akiec"], clean.loc[pick, "score_akiec"]
    )


# --- 8. grad-cam's detector target stays on the outputs' device -------------------------------------


def test_gradcam_detector_target_keeps_cpu_tensors_on_a_cuda_machine(monkeypatch):
    pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *a, **k: pytest.fail(".cuda() on a CPU run"))
    target = FasterRCNNBoxScoreTarget(labels=[2], bounding_boxes=[torch.tensor([0.0, 0.0, 10.0, 10.0])])
    score = target(
        {
            "boxes": torch.tensor([[0.0, 0.0, 10.0, 9.0]]),
            "labels": torch.tensor([2]),
            "scores": torch.tensor([0.7]),
        }
    )
    assert score.device.type == "cpu" and float(score) == pytest.approx(0.9 + 0.7)


# --- the GPU benchmark script, in its CPU smoke mode ------------------------------------------------


@pytest.mark.slow
def test_gpu_benchmark_smoke_gives_every_figure(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--smoke"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    figures = {line["figure"]: line for line in lines}
    assert set(figures) == {
        "versions",
        "ceiling",
        "loader",
        "train_resnet34",
        "train_fasterrcnn_resnet34",
        "train_maskrcnn_resnet34",
    }, result.stdout
    assert not [line for line in lines if "error" in line or "skipped" in line]
    assert figures["versions"]["torch"] == torch.__version__
    ceiling = figures["ceiling"]["batches"]
    assert {c["batch_size"] for c in ceiling} == set(figures["ceiling"]["batch_sizes"])
    assert all(c["bare_images_per_s"] > 0 and c["engine_images_per_s"] > 0 for c in ceiling)
    assert all(w["steady_images_per_s"] > 0 and w["first_batch_s"] > 0 for w in figures["loader"]["workers"])
    resnet = figures["train_resnet34"]
    assert resnet["epochs"] == 2 and resnet["resumed_epochs"] == [1, 2] and resnet["images_per_s"] > 0
    assert resnet["resume_max_abs_weight_diff"] == 0.0  # bit-exact on CPU
    for arch in ("fasterrcnn_resnet34", "maskrcnn_resnet34"):
        detector = figures[f"train_{arch}"]
        assert (
            detector["images_per_s"] > 0
            and detector["amp_backbone_step_ms"] > 0 < detector["amp_whole_step_ms"]
        )


# --- 7. DDP for real: two gloo ranks on the CPU ----------------------------------------------------

DDP_RANK = """
import sys, torch
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[1] + "/tests")
from test_gpu_readiness import _config, _small_cnn
from training.models import MODELS
from training.run.engine import train
MODELS["small_cnn"] = _small_cnn
torch.set_num_threads(1)
summary = train(_config(sys.argv[2], epochs=2, device="cpu"), sys.argv[3], progress=False)
print(summary["epochs_run"])
"""


@pytest.mark.slow
def test_two_gloo_ranks_train_one_run(tmp_path, train_dir):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in (0, 1):
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "WORLD_SIZE": "2",
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "OMP_NUM_THREADS": "1",
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", DDP_RANK, str(ROOT), str(train_dir), str(tmp_path / "run")],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        results = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err[-3000:]
        assert out.strip() == "2"
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["world_size"] == 2 and config["device"] == "cpu"
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2] and all(np.isfinite(r["train_loss"]) for r in log)
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["epoch"] == 2
