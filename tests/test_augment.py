"""Artefacts as a training-time augmentation: the numpy ArtefactAugmenter (generator.artefacts.augment) and the
torchvision RandomArtefact (training.data.augment): replay, determinism across processes and DataLoader
workers, p edge cases, kind weights (statistically), mask and box consistency, input validation,
and the --augment-artefacts training option."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from generator.artefacts import render
from generator.artefacts.augment import ArtefactAugmenter, auto_lesion_mask, kind_weights
from generator.artefacts.kinds import DEFAULT_FAMILIES, FAMILIES, KINDS
from generator.artefacts.templates import TemplateBank

REPO = Path(__file__).resolve().parents[1]
ALPHA = 1e-3
"""Significance level of the statistical checks (fixed seeds, so each outcome is reproducible)."""


def skin_image(height: int = 240, width: int = 320, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Textured skin-like image and an off-centre elliptical lesion mask (0/1)."""
    rng = np.random.default_rng(seed)
    image = np.clip(rng.normal([196, 150, 128], 12, (height, width, 3)), 0, 255).astype(np.uint8)
    y, x = np.mgrid[0:height, 0:width]
    mask = ((y - height * 0.45) / (height * 0.2)) ** 2 + ((x - width * 0.55) / (width * 0.18)) ** 2 < 1
    image[mask] //= 2
    return image, mask.astype(np.uint8)


@pytest.fixture(scope="module")
def builtin() -> TemplateBank:
    return TemplateBank.builtin(0)


# ------------------------------------------------------------------------------------ numpy augmenter
@pytest.mark.parametrize("with_mask", [True, False])
def test_output_replays_byte_identically_from_the_json_record(builtin, with_mask):
    image, mask = skin_image()
    augment = ArtefactAugmenter(p=1.0, templates=builtin)
    kinds = set()
    for seed in range(12):
        out, artefact_mask, record = augment(image, mask if with_mask else None, seed=seed)
        kinds.add(record["kind"])
        replayed, replayed_mask = render(image, json.loads(json.dumps(record)), builtin)
        assert replayed.tobytes() == out.tobytes()
        assert np.array_equal(replayed_mask, artefact_mask)
        # the artefact mask is exactly the changed pixels, and the input is left untouched
        assert np.array_equal(artefact_mask, np.any(out != image, axis=2))
        assert artefact_mask.any()
    assert len(kinds) >= 3
    assert np.array_equal(image, skin_image()[0])


def test_real_template_folder_replays(real_templates_dir):
    image, mask = skin_image(450, 600)
    augment = ArtefactAugmenter(p=1.0, kinds={"ruler": 1, "marking": 1}, templates=real_templates_dir)
    assert augment.bank.source == str(real_templates_dir.resolve())
    for seed in range(4):
        out, artefact_mask, record = augment(image, mask, seed)
        assert record["kind"] in FAMILIES["ruler"] + FAMILIES["marking"]
        assert render(image, record, augment.bank)[0].tobytes() == out.tobytes() and artefact_mask.any()


def test_same_seed_same_output_and_a_generator_is_accepted(builtin):
    image, mask = skin_image()
    augment = ArtefactAugmenter(p=0.7, templates=builtin)
    for seed in range(6):
        first, second = augment(image, mask, seed), augment(image, mask, np.random.default_rng(seed))
        assert first[0].tobytes() == second[0].tobytes() and first[2] == second[2]
    records = [augment(image, mask, seed)[2] for seed in range(20)]
    drawn = [json.dumps(r, sort_keys=True) for r in records if r is not None]
    assert len(set(drawn)) == len(drawn) >= 5  # different seeds, different artefacts
    # a shared generator advances: consecutive calls differ
    rng = np.random.default_rng(0)
    assert ArtefactAugmenter(p=1.0)(image, mask, rng)[2] != ArtefactAugmenter(p=1.0)(image, mask, rng)[2]


def test_p_zero_and_one(builtin):
    image, mask = skin_image()
    never = ArtefactAugmenter(p=0.0, templates=builtin)
    for seed in range(30):
        out, artefact_mask, record = never(image, mask, seed)
        assert record is None and not artefact_mask.any() and out.tobytes() == image.tobytes()
    always = ArtefactAugmenter(p=1.0, templates=builtin)
    for seed in range(30):
        out, artefact_mask, record = always(image, mask, seed)
        assert record is not None and artefact_mask.any() and out.tobytes() != image.tobytes()


def test_probability_p_is_respected(builtin):
    augment = ArtefactAugmenter(p=0.3, templates=builtin)
    n = 2000
    applied = sum(augment.draw((48, 64), np.ones((48, 64), np.uint8), seed) is not None for seed in range(n))
    assert stats.binomtest(applied, n, 0.3).pvalue > ALPHA, applied
    assert stats.binomtest(applied, n, 0.4).pvalue < ALPHA  # the check has the power to see a wrong p


def _kind_counts(augment: ArtefactAugmenter, n: int) -> dict[str, int]:
    mask = np.zeros((48, 64), np.uint8)
    mask[16:32, 20:44] = 1
    counts = dict.fromkeys(KINDS, 0)
    for seed in range(n):
        counts[augment.draw((48, 64), mask, seed)["kind"]] += 1
    return counts


def test_kind_weights_are_respected_chi_square(builtin):
    weights = {"bubble": 1, "ruler_horizontal": 3, "marking_spot": 6}
    augment = ArtefactAugmenter(p=1.0, kinds=weights, templates=builtin)
    n = 1500
    counts = _kind_counts(augment, n)
    assert counts["ruler_vertical"] == counts["marking_circle"] == 0  # weightless kinds never appear
    observed = [counts[k] for k in weights]
    expected = [n * w / sum(weights.values()) for w in weights.values()]
    assert stats.chisquare(observed, expected).pvalue > ALPHA, counts
    # the same counts are far from equal weights: the test can tell
    assert stats.chisquare(observed, [n / 3] * 3).pvalue < ALPHA


def test_families_share_their_weight_and_the_default_is_family_then_kind(builtin):
    assert kind_weights({"ruler": 1, "bubble": 1}, builtin) == pytest.approx(
        {"bubble": 0.5, "ruler_horizontal": 0.25, "ruler_vertical": 0.25}
    )
    default = kind_weights(None, builtin)  # the paper's three families, as the default variants draw
    assert set(default) == {kind for family in DEFAULT_FAMILIES for kind in FAMILIES[family]}
    for family in DEFAULT_FAMILIES:
        for kind in FAMILIES[family]:
            assert default[kind] == pytest.approx(1 / len(DEFAULT_FAMILIES) / len(FAMILIES[family]))
    n = 1200
    counts = _kind_counts(ArtefactAugmenter(p=1.0, templates=builtin), n)
    observed = [counts[k] for k in default]
    assert stats.chisquare(observed, [n * w for w in default.values()]).pvalue > ALPHA, counts
    # a bank holding one family only: the default uses what the bank has
    rulers = TemplateBank(builtin.sets["ruler_horizontal"], source="rulers")
    assert kind_weights(None, rulers) == {"ruler_horizontal": 1.0}
    hair = TemplateBank(builtin.sets["hair"], source="hair")  # none of the paper's families: what it has
    assert kind_weights(None, hair) == {"hair": 1.0}


def test_template_scale_auto_keeps_the_relative_size(builtin):
    image, mask = skin_image(900, 1200)  # twice HAM10000's 600x450: auto doubles every scale
    auto = ArtefactAugmenter(p=1.0, kinds="bubble", templates=builtin)(image, mask, 3)[2]
    fixed = ArtefactAugmenter(p=1.0, kinds="bubble", templates=builtin, template_scale=1.0)(image, mask, 3)[2]
    assert len(auto["instances"]) == len(fixed["instances"]) > 0
    for a, f in zip(auto["instances"], fixed["instances"], strict=True):
        assert a["template"] == f["template"] and a["angle"] == f["angle"]
        assert a["scale"] == pytest.approx(2 * f["scale"], abs=2e-4)


def test_automatic_lesion_mask_finds_the_lesion():
    image, mask = skin_image(450, 600)
    auto = auto_lesion_mask(image).astype(bool)
    lesion = mask.astype(bool)
    assert (auto & lesion).sum() / (auto | lesion).sum() > 0.8


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"p": 1.5}, "^p: "),
        ({"p": "half"}, "^p: "),
        ({"p": True}, "^p: "),
        ({"kinds": "freckle"}, "^kinds: unknown kind or family 'freckle'"),
        ({"kinds": {"ruler": -1}}, "^kinds: the weight"),
        ({"kinds": {"bubble": 0}}, "^kinds: all weights are zero"),
        ({"kinds": []}, "^kinds: "),
        ({"kinds": 3}, "^kinds: "),
        ({"templates": "/no/such/folder"}, "^templates: "),
        ({"templates": 7}, "^templates: "),
        ({"template_scale": 0}, "^template_scale: "),
        ({"template_scale": "big"}, "^template_scale: "),
    ],
)
def test_bad_parameters_raise_a_value_error_naming_them(arguments, message):
    with pytest.raises(ValueError, match=message):
        ArtefactAugmenter(**arguments)


def test_kinds_missing_from_the_bank_are_named(builtin):
    rulers = TemplateBank(builtin.sets["ruler_horizontal"], source="rulers")
    with pytest.raises(ValueError, match="^kinds: the template bank rulers has no 'bubble' templates"):
        ArtefactAugmenter(kinds="bubble", templates=rulers)
    with pytest.raises(ValueError, match="^kinds: the template bank rulers has no 'marking' templates"):
        ArtefactAugmenter(kinds="marking", templates=rulers)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda a, im, m: a(im.astype(np.float32), m, 0), "^image: expected a uint8 HxWx3"),
        (lambda a, im, m: a(im[:, :, 0], m, 0), "^image: "),
        (lambda a, im, m: a(im.tolist(), m, 0), "^image: "),
        (lambda a, im, m: a(im, m[:-1], 0), r"^lesion_mask: shape \(239, 320\) differs"),
        (lambda a, im, m: a(im, m.astype(np.float32), 0), "^lesion_mask: "),
        (lambda a, im, m: a(im, m, -1), "^seed: "),
        (lambda a, im, m: a(im, m, 1.5), "^seed: "),
    ],
)
def test_bad_inputs_raise_a_value_error_naming_them(builtin, call, message):
    image, mask = skin_image()
    with pytest.raises(ValueError, match=message):
        call(ArtefactAugmenter(p=1.0, templates=builtin), image, mask)


# ------------------------------------------------------------------------------------ torchvision transform
torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
from torchvision import tv_tensors  # noqa: E402


def _sample(height: int = 240, width: int = 320, seed: int = 0):
    image, mask = skin_image(height, width, seed)
    box = tv_tensors.BoundingBoxes([[100.0, 60.0, 220.0, 170.0]], format="XYXY", canvas_size=(height, width))
    return (
        tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1)),
        tv_tensors.Mask(torch.from_numpy(mask)),
        box,
    )


def test_transform_equals_the_augmenter_with_the_torch_drawn_seed():
    from generator.artefacts.augment import SEED_LIMIT
    from training.data.augment import RandomArtefact

    image, mask, box = _sample()
    transform = RandomArtefact(p=0.6, kinds={"ruler": 1, "marking": 2})
    for seed in range(8):
        torch.manual_seed(seed)
        out, out_mask, out_box = transform(image, mask, box)
        torch.manual_seed(seed)
        numpy_seed = int(torch.randint(SEED_LIMIT, (1,)).item())
        expected, _, _ = transform.augmenter(image.permute(1, 2, 0).numpy(), mask.numpy(), numpy_seed)
        assert np.array_equal(out.permute(1, 2, 0).numpy(), expected)
        assert type(out) is tv_tensors.Image and type(out_mask) is tv_tensors.Mask


def test_masks_and_boxes_pass_through_unchanged_and_the_artefact_mask_is_returned():
    from training.data.augment import RandomArtefact

    image, mask, box = _sample()
    torch.manual_seed(0)
    out, out_mask, out_box, artefact_mask = RandomArtefact(p=1.0, return_artefact_mask=True)(image, mask, box)
    assert (
        torch.equal(out_mask, mask) and torch.equal(out_box, box) and out_box.canvas_size == box.canvas_size
    )
    assert type(out_box) is tv_tensors.BoundingBoxes and type(artefact_mask) is tv_tensors.Mask
    assert artefact_mask.dtype == torch.uint8 and artefact_mask.shape == mask.shape
    changed = (out != image).any(dim=0)
    assert artefact_mask.bool().equal(changed) and changed.any()
    # single-image call: (image, artefact_mask); p = 0: the very input back, an empty artefact mask
    clean, empty = RandomArtefact(p=0.0, return_artefact_mask=True)(image)
    assert clean is image and not empty.any()


# Recorded with the RandomArtefact of version 0.2.0 (whole insertion in make_params, forward overridden).
RANDOM_ARTEFACT_DIGESTS = {
    "Image+Mask+Box p=1 mask": "36bb0a508c9735308a01a61841872b34ba19695b4dc0b3d23d74083662a47844",
    "tensor p=0.7 auto mask": "79d119ddfe1a5e1a2c970d186f7b04f30b620cf975f4ac28caa38e906629956e",
    "PIL bubble/circle": "0d172349077eb2aaa826baf98f5108570af594393943ad92ceac975e7bd9223c",
    "p=0.5 ruler/marking Image+Mask mask": "1d2ab73b5609cc633d2199dcc44afb31f913dd0196c73c7dbef7dcd0a47f9862",
    "small scale0.5 mask": "277c35eb45a3074a5d3ddbc041ef35818654e8c1cb3132621cef484b3399a974",
}


def test_outputs_for_a_seed_are_byte_identical_to_before():
    from helpers.training import digest_arrays
    from PIL import Image

    from training.data.augment import RandomArtefact

    image, mask = skin_image(240, 320, seed=2)
    tensor = tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1))
    lesion = tv_tensors.Mask(torch.from_numpy(mask))
    box = tv_tensors.BoundingBoxes([[100.0, 60.0, 220.0, 170.0]], format="XYXY", canvas_size=(240, 320))
    small = torch.from_numpy(skin_image(113, 150, seed=5)[0]).permute(2, 0, 1)
    cases = {
        "Image+Mask+Box p=1 mask": (
            RandomArtefact(p=1.0, return_artefact_mask=True),
            (tensor, lesion, box),
            6,
        ),
        "tensor p=0.7 auto mask": (RandomArtefact(p=0.7), (tensor.as_subclass(torch.Tensor),), 8),
        "PIL bubble/circle": (
            RandomArtefact(p=1.0, kinds=["bubble", "marking_circle"]),
            (Image.fromarray(image),),
            4,
        ),
        "p=0.5 ruler/marking Image+Mask mask": (
            RandomArtefact(p=0.5, kinds={"ruler": 2, "marking": 1}, return_artefact_mask=True),
            (tensor, lesion),
            8,
        ),
        "small scale0.5 mask": (
            RandomArtefact(p=1.0, template_scale=0.5, return_artefact_mask=True),
            (small,),
            4,
        ),
    }
    for name, (transform, sample, seeds) in cases.items():
        arrays = []
        for seed in range(seeds):
            torch.manual_seed(seed)
            out = transform(*sample)
            arrays += [np.asarray(part) for part in (out if isinstance(out, tuple) else (out,))]
        assert digest_arrays(*arrays) == RANDOM_ARTEFACT_DIGESTS[name], name


def test_make_params_draws_the_record_and_transform_renders_it():
    """v2's contract: the record (kinds, template ids, flips, scales, angles, centres) is drawn in
    make_params; transform paints it on the image and hands every other input back untouched; no
    forward override and no private torchvision import."""
    import ast
    import inspect

    import training.data.augment as module
    from training.data.augment import RandomArtefact

    image, mask, box = _sample()
    transform = RandomArtefact(p=1.0, kinds="marking_circle")
    params = transform.make_params([image, mask, box])
    record = params["record"]
    assert record["kind"] == "marking_circle" and record["instances"]
    assert {"template", "flip", "scale", "angle", "centre"} <= set(record["instances"][0])
    painted = transform.transform(image, params)
    expected, _ = render(image.permute(1, 2, 0).numpy(), record, transform.augmenter.bank)
    assert type(painted) is tv_tensors.Image and np.array_equal(painted.permute(1, 2, 0).numpy(), expected)
    assert transform.transform(mask, params) is mask and transform.transform(box, params) is box
    assert "forward" not in RandomArtefact.__dict__
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(ast.parse(inspect.getsource(module)))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    private = [name for name in imported if any(part.startswith("_") for part in name.split("."))]
    assert private == ["__future__"]


def test_pil_and_plain_tensor_inputs():
    from PIL import Image

    from training.data.augment import RandomArtefact

    image, mask, _ = _sample()
    pixels = image.permute(1, 2, 0).numpy()
    transform = RandomArtefact(p=1.0, return_artefact_mask=True)
    torch.manual_seed(4)
    pil_out, pil_mask = transform(Image.fromarray(pixels))
    torch.manual_seed(4)
    tensor_out, tensor_mask = transform(torch.from_numpy(pixels).permute(2, 0, 1))
    assert isinstance(pil_out, Image.Image) and type(tensor_out) is torch.Tensor
    assert np.array_equal(np.asarray(pil_out), tensor_out.permute(1, 2, 0).numpy())
    assert torch.equal(pil_mask, tensor_mask)
    with pytest.raises(ValueError, match="^image: RandomArtefact needs a uint8 3xHxW tensor"):
        transform(image.float() / 255)
    with pytest.raises(ValueError, match="^image: RandomArtefact needs an RGB PIL image"):
        transform(Image.fromarray(pixels[:, :, 0]))
    with pytest.raises(ValueError, match="^p: "):
        RandomArtefact(p=-0.1)


def test_detector_pipeline_keeps_mask_and_box_consistent():
    """With augmentation the joint training transform moves mask and box exactly as without it (same
    geometric draws): the artefact changes pixels only."""
    from generator.artefacts.augment import SEED_LIMIT
    from training.data.transforms import train_transform

    image, mask, box = _sample()
    augmented, plain = train_transform(64, augment_artefacts=1.0), train_transform(64)
    for seed in range(5):
        torch.manual_seed(seed)
        image_a, (mask_a, box_a) = augmented(image.as_subclass(torch.Tensor), (mask, box))
        torch.manual_seed(seed)
        torch.randint(SEED_LIMIT, (1,))  # the artefact's one draw, so the geometry draws line up
        image_p, (mask_p, box_p) = plain(image.as_subclass(torch.Tensor), (mask, box))
        assert type(mask_a) is tv_tensors.Mask and type(box_a) is tv_tensors.BoundingBoxes
        assert torch.equal(mask_a, mask_p) and torch.equal(box_a, box_p) and mask_a.shape == (64, 64)
        assert not torch.equal(image_a, image_p)


def test_pickled_transform_gives_the_same_output():
    import pickle

    from training.data.augment import RandomArtefact

    image, mask, box = _sample()
    transform = RandomArtefact(p=1.0, kinds=["bubble", "marking_circle"])
    copy = pickle.loads(pickle.dumps(transform))
    assert copy.augmenter.bank is transform.augmenter.bank  # reloaded from the per-process cache
    torch.manual_seed(1)
    first = transform(image, mask, box)
    torch.manual_seed(1)
    second = copy(image, mask, box)
    assert torch.equal(first[0], second[0])


_LOADER_CODE = """
import hashlib, json, sys
import numpy as np, torch
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from training.data.augment import RandomArtefact
sys.path.insert(0, "tests")
from test_augment import skin_image

class Images(Dataset):
    def __init__(self):
        self.transform = RandomArtefact(p=0.5, return_artefact_mask=True)
    def __len__(self):
        return 12
    def __getitem__(self, i):
        image, mask = skin_image(96, 128, seed=i)
        out, lesion, artefact = self.transform(tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1)),
                                               tv_tensors.Mask(torch.from_numpy(mask)))
        return out.as_subclass(torch.Tensor), artefact.as_subclass(torch.Tensor)

result = {}
for workers in (0, 2):
    for seed in (0, 1):
        loader = DataLoader(Images(), batch_size=4, num_workers=workers, generator=torch.Generator().manual_seed(seed))
        torch.manual_seed(seed)
        digest = hashlib.sha256()
        applied = 0
        for images, masks in loader:
            digest.update(images.numpy().tobytes()); digest.update(masks.numpy().tobytes())
            applied += int(masks.flatten(1).any(1).sum())
        result[f"{workers}:{seed}"] = [digest.hexdigest(), applied]
print(json.dumps(result))
"""


def test_runs_are_reproducible_across_processes_and_dataloader_workers():
    import os
    from contextlib import redirect_stdout
    from io import StringIO

    run = subprocess.run(
        [sys.executable, "-c", _LOADER_CODE],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    other_process = json.loads(run.stdout)
    buffer = StringIO()
    with redirect_stdout(buffer):
        exec(_LOADER_CODE, {"__name__": "loader_check"})
    this_process = json.loads(buffer.getvalue())
    assert this_process == other_process  # the same loader seed gives the same artefacts in another process
    for workers in (0, 2):
        # another loader seed gives other artefacts, and some images of 12 get one at p = 0.5
        assert other_process[f"{workers}:0"][0] != other_process[f"{workers}:1"][0]
        assert all(0 < other_process[f"{workers}:{seed}"][1] < 12 for seed in (0, 1))


# ------------------------------------------------------------------------------------ training option
def test_augment_artefacts_option_trains_on_training_images_only_and_is_recorded(tmp_path, monkeypatch):
    pytest.importorskip("sklearn")
    from helpers.training import write_synthetic_data
    from test_training_engine import _config, _small_cnn

    from training.data import augment
    from training.models import MODELS
    from training.run.engine import train

    monkeypatch.setitem(MODELS, "small_cnn", _small_cnn)
    calls = []
    make_params = augment.RandomArtefact.make_params

    def counting(self, flat_inputs):
        params = make_params(self, flat_inputs)
        calls.append(params["record"] is not None)
        return params

    monkeypatch.setattr(augment.RandomArtefact, "make_params", counting)
    data = write_synthetic_data(tmp_path / "data", n_train=42, n_test=7, train_variants=("train_none",))
    summary = train(
        _config(data, epochs=1, max_train_images=16, augment_artefacts=1.0), tmp_path / "run", progress=False
    )
    assert summary["epochs_run"] == 1
    # every training image once per epoch, each with an artefact at p = 1; none of the validation images
    assert len(calls) == 16 and all(calls)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["augment_artefacts"] == 1.0 and config["augment_templates"] == "builtin"


def test_augment_artefacts_is_validated_and_carried_by_sweep_jobs(tmp_path, capsys):
    from generator.cli import main
    from training.run.sweep import load_jobs

    data = tmp_path / "data"
    data.mkdir()
    assert (
        main(
            [
                "sweep",
                "plan",
                "--data",
                str(data),
                "--out",
                str(tmp_path / "runs"),
                "--profile",
                "tiny",
                "--archs",
                "resnet34",
                "--train-variants",
                "train_nv",
                "--augment-artefacts",
                "0.5",
            ]
        )
        == 0
    )
    jobs = load_jobs(tmp_path / "runs" / "jobs.jsonl")
    assert jobs and all(job["config"]["augment_artefacts"] == 0.5 for job in jobs)
    capsys.readouterr()
    assert (
        main(
            [
                "sweep",
                "plan",
                "--data",
                str(data),
                "--out",
                str(tmp_path / "bad"),
                "--augment-artefacts",
                "1.5",
            ]
        )
        == 2
    )
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "--augment-artefacts" in error[0]
    assert not (tmp_path / "bad" / "jobs.jsonl").exists()
    assert (
        main(
            [
                "sweep",
                "plan",
                "--data",
                str(data),
                "--out",
                str(tmp_path / "bad"),
                "--augment-artefacts",
                "0.5",
                "--augment-templates",
                str(tmp_path / "nothing"),
            ]
        )
        == 2
    )
    assert "--augment-templates" in capsys.readouterr().err
    (tmp_path / "no_meta").mkdir()
    assert (
        main(
            [
                "sweep",
                "plan",
                "--data",
                str(data),
                "--out",
                str(tmp_path / "bad"),
                "--augment-artefacts",
                "0.5",
                "--augment-templates",
                str(tmp_path / "no_meta"),
            ]
        )
        == 2
    )
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "meta.json" in error[0]


def test_readme_example_runs_on_an_image_folder(tmp_path):
    """The README's torchvision example, verbatim but for the folder, on a folder of someone's JPEGs."""
    import re

    from PIL import Image

    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### Artefacts as a training-time augmentation") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    # short enough to read at a glance in a README of two minutes (ruff-formatted: one transform a line)
    assert len(code.strip().splitlines()) <= 16
    assert "from training.augment import RandomArtefact" in code  # the documented user import
    for index, label in enumerate(("benign", "malignant")):
        (tmp_path / label).mkdir()
        image, _ = skin_image(120, 160, seed=index)
        Image.fromarray(image).save(tmp_path / label / "a.jpg")
    namespace: dict = {}
    exec(code.replace('"isic2019/train"', repr(str(tmp_path))), namespace)
    torch.manual_seed(0)
    image, label = namespace["train_set"][1]
    assert image.shape == (3, 224, 224) and image.dtype == torch.float32 and label == 1
