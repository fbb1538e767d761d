"""Checkpoints: a damaged or missing file and a full disk are one line naming the file (training.models.checkpoints)."""

from __future__ import annotations

import errno

import pytest

torch = pytest.importorskip("torch")

from generator.errors import UserError  # noqa: E402
from training.models import checkpoints  # noqa: E402


def test_round_trip_and_weights_only(tmp_path):
    path = tmp_path / "last.pt"
    checkpoints.save_checkpoint({"epoch": 3, "w": torch.ones(2)}, path)
    loaded = checkpoints.load_checkpoint(path)
    assert loaded["epoch"] == 3 and torch.equal(loaded["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left


@pytest.mark.parametrize("content", [b"", b"garbage, not a zip", None], ids=["empty", "garbage", "truncated"])
def test_a_damaged_checkpoint_names_the_file_and_never_suggests_weights_only_false(tmp_path, content):
    path = tmp_path / "best.pt"
    if content is None:
        checkpoints.save_checkpoint({"w": torch.ones(1000)}, path)
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(UserError) as info:
        checkpoints.load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path}: damaged or not a checkpoint") and "train the run again" in message
    assert "\n" not in message and "weights_only=False" not in message


def test_a_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(UserError, match=r"best\.pt: checkpoint not found"):
        checkpoints.load_checkpoint(tmp_path / "best.pt")


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0"),
    ],
    ids=["ENOSPC", "torch-zip-writer"],
)
def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch, error):
    path = tmp_path / "last.pt"
    checkpoints.save_checkpoint({"epoch": 1}, path)

    def full(obj, f, *args, **kwargs):
        raise error

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(
        UserError,
        match=r"last\.pt: no space left on device \(checkpoint not written; the previous one is intact\)",
    ):
        checkpoints.save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert checkpoints.load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
