"""Grad-CAM of the trained models and the "artefact attention" ratio.

Maps come from pytorch-grad-cam (``GradCAM``), all on the last ResNet-34 stage:

- classifier (resnet34): ``model.layer4``, target = the logit of the predicted class
  (``ClassifierOutputTarget``);
- detectors (Faster/Mask R-CNN): ``model.backbone.body.layer4`` (a plain tensor, so no
  reshape_transform is needed), target = the top detection's box score
  (``FasterRCNNBoxScoreTarget`` on its label and box, as in the library's Faster R-CNN tutorial: the
  model runs in eval mode and returns detections). No detection at all gives an all-zero map.

Maps keep their magnitude (bilinear upsampling, no min-max scaling; see ``_unscaled_gradcam``), so
"CAM mass" means something; overlays are divided by their maximum for display only. Cost: a
detector map runs the box head on all RPN proposals (1000) twice plus a backward, ~1-2 s on one CPU
core; use ``--device cuda`` or ``--arch/--train-variant/--n`` to limit a CPU run.

Images go through the same evaluation transform as prediction (resize to the run's image_size), and
the artefact mask is resized with them (nearest), so maps, images and masks share one grid.

Artefact attention = (CAM mass inside the artefact mask / total CAM mass) / (mask area / image area):
1 means the map is no more drawn to the artefact than a uniform map; > 1 means attracted to it.
It is computed for the map on the image with its artefact (attention_artefact) and, as a baseline,
for the map on the clean image over the same region (attention_clean). NaN when the map is all zero
or the mask is empty.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from generator import CLASSES
from generator.errors import UserError
from generator.seeding import derive_seed

INDEX_COLUMNS = [
    "arch",
    "train_variant",
    "image_id",
    "dx",
    "kind",
    "clean_png",
    "artefact_png",
    "attention_clean",
    "attention_artefact",
]
ATTENTION_COLUMNS = ["arch", "train_variant", "n", "attention_mean", "attention_ci_lo", "attention_ci_hi"]


def target_layer(model, arch: str):
    """The layer Grad-CAM reads: the last ResNet-34 stage of every architecture."""
    from training.models import is_detector

    return model.backbone.body.layer4 if is_detector(arch) else model.layer4


def grad_cam(model, arch: str, image) -> tuple[np.ndarray, int]:
    """(map HxW float32 >= 0, predicted class or -1) for one float image CxHxW in [0, 1].

    The map is pytorch-grad-cam's GradCAM (ReLU of the gradient-weighted activations), upsampled
    bilinearly to the image but not min-max scaled: see :func:`_unscaled_gradcam`. Overlays divide
    by the maximum for display only.
    """
    import torch
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget, FasterRCNNBoxScoreTarget

    from training.models import is_detector

    model.eval()
    batch = image[None].to(next(model.parameters()).device)
    height, width = image.shape[-2:]
    if is_detector(arch):
        # Only the top detection is the target: keeping just it skips the box (and, for Mask R-CNN,
        # mask) head work on the other 99 without changing which detection is on top.
        model.roi_heads.detections_per_img = 1
    with torch.no_grad():
        output = model(batch)
    if is_detector(arch):
        detections = output[0]
        if len(detections["scores"]) == 0:
            return np.zeros((height, width), np.float32), -1
        top = int(torch.argmax(detections["scores"]))  # (already first: torchvision sorts by score)
        label = int(detections["labels"][top])
        targets = [
            FasterRCNNBoxScoreTarget(labels=[label], bounding_boxes=[detections["boxes"][top].detach()])
        ]
        predicted = label - 1  # detector label 0 is the background
    else:
        predicted = int(output[0].argmax())
        targets = [ClassifierOutputTarget(predicted)]
    # Gradients are needed w.r.t. activations only: with the weights frozen (and the input made to
    # require grad so the graph exists) backward skips every weight-gradient product.
    trainable = [p for p in model.parameters() if p.requires_grad]
    for parameter in trainable:
        parameter.requires_grad_(False)
    try:
        with _unscaled_gradcam()(model=model, target_layers=[target_layer(model, arch)]) as cam:
            maps = cam(input_tensor=batch.clone().requires_grad_(True), targets=targets)
    except RuntimeError as exc:
        if "does not require grad" not in str(exc):
            raise
        # The top box was not re-found in the differentiable pass (no gradient to follow).
        return np.zeros((height, width), np.float32), predicted
    finally:
        for parameter in trainable:
            parameter.requires_grad_(True)
    return np.maximum(np.asarray(maps[0], dtype=np.float32), 0), predicted


def _unscaled_gradcam():
    """pytorch-grad-cam's GradCAM, keeping each map's magnitude.

    The library min-max scales every map (subtracts its minimum, divides by its maximum). Subtracting
    the minimum changes the share of mass inside a region, which is what artefact attention measures,
    and turns a constant map (e.g. a 1x1 feature map from a tiny input) into zeros. So only the
    final step differs: bilinear upsampling of the ReLU map without rescaling. Gradients, channel
    weights and the weighted sum are the library's (get_cam_image).
    """
    import torch
    from pytorch_grad_cam import GradCAM

    class UnscaledGradCAM(GradCAM):
        def compute_cam_per_layer(self, input_tensor, targets, eigen_smooth):
            activations = [a.cpu().data.numpy() for a in self.activations_and_grads.activations]
            grads = [g.cpu().data.numpy() for g in self.activations_and_grads.gradients]
            size = tuple(input_tensor.shape[-2:])
            maps = []
            for layer, layer_activations, layer_grads in zip(
                self.target_layers, activations, grads, strict=False
            ):
                cam = self.get_cam_image(
                    input_tensor, layer, targets, layer_activations, layer_grads, eigen_smooth
                )
                cam = torch.from_numpy(np.maximum(cam, 0).astype(np.float32))[:, None]
                up = torch.nn.functional.interpolate(cam, size=size, mode="bilinear", align_corners=False)
                maps.append(up.numpy())
            return maps

        def aggregate_multi_layers(self, cam_per_target_layer):
            return np.maximum(np.concatenate(cam_per_target_layer, axis=1), 0).mean(axis=1)

    return UnscaledGradCAM


def artefact_attention(cam: np.ndarray, mask: np.ndarray) -> float:
    """(share of CAM mass inside ``mask``) / (share of image area inside ``mask``); NaN if undefined."""
    cam = np.asarray(cam, dtype=np.float64)
    inside = np.asarray(mask) > 0
    if cam.shape != inside.shape:
        raise ValueError(f"map {cam.shape} and mask {inside.shape} differ in shape")
    total, area = cam.sum(), inside.mean()
    if total <= 0 or area == 0:
        return float("nan")
    return float(cam[inside].sum() / total / area)


def sample_images(labels, kinds, n: int, seed: int) -> list[int]:
    """A seeded sample of ``n`` row indices covering every class and every artefact kind present.

    One image per class first (preferring a kind not yet covered), then one per still uncovered kind,
    then random rows; the coverage rows come first, so a small ``n`` keeps as much coverage as fits.
    """
    labels, kinds = np.asarray(labels), np.asarray(kinds, dtype=object)
    rng = np.random.default_rng(derive_seed(seed, "gradcam-sample"))
    order = rng.permutation(len(labels))
    chosen: list[int] = []
    covered_kinds: set[str] = set()
    for label in range(len(CLASSES)):
        rows = [i for i in order if labels[i] == label and i not in chosen]
        if rows:
            fresh = [i for i in rows if kinds[i] not in covered_kinds]
            pick = (fresh or rows)[0]
            chosen.append(int(pick))
            covered_kinds.add(kinds[pick])
    for kind in sorted(set(kinds) - covered_kinds - {""}):
        chosen.append(int(next(i for i in order if kinds[i] == kind)))
    chosen += [int(i) for i in order if i not in chosen]
    return chosen[:n]


def find_models(
    runs_dir: str | Path, fold: int | None = None, archs=None, train_variants=None
) -> list[tuple[str, str, Path]]:
    """[(arch, train_variant, run_dir)]: one run with best.pt per (arch, train_variant), lowest fold
    (or exactly ``fold``), optionally only the given archs / training variants."""
    from .predictions import TRAINING_CONDITIONS, _order

    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise UserError(f"{runs_dir}: runs folder not found")
    best: dict[tuple[str, str], tuple[int, Path]] = {}
    for checkpoint in runs_dir.glob("*/*/fold*/best.pt"):
        run = checkpoint.parent
        try:
            k = int(run.name.removeprefix("fold"))
        except ValueError:
            continue
        if not (run / "config.json").is_file() or (fold is not None and k != fold):
            continue
        key = (run.parent.parent.name, run.parent.name)
        if (archs and key[0] not in archs) or (train_variants and key[1] not in train_variants):
            continue
        if key not in best or k < best[key][0]:
            best[key] = (k, run)
    if not best:
        raise UserError(
            f"{runs_dir}: no <arch>/<train_variant>/fold<k>/ with best.pt and config.json"
            + (
                " matching --fold/--arch/--train-variant"
                if fold is not None or archs or train_variants
                else ""
            )
        )
    keys = sorted(best, key=lambda key: (key[0], _order(key[1], TRAINING_CONDITIONS)))
    return [(arch, train, best[(arch, train)][1]) for arch, train in keys]


def _overlay(image, cam) -> np.ndarray:
    from pytorch_grad_cam.utils.image import show_cam_on_image

    peak = float(cam.max())
    shown = cam / peak if peak > 0 else cam
    return show_cam_on_image(image.permute(1, 2, 0).numpy().astype(np.float32), shown, use_rgb=True)


def _prepare(dataset, row: int):
    """(image float CxHxW in [0, 1], artefact mask HxW bool) after the dataset's evaluation transform."""
    image, mask = dataset[row]
    return image, mask.numpy() > 0


def run_gradcam(
    runs_dir,
    data_dir,
    out_dir,
    n_images: int = 24,
    seed: int = 0,
    fold: int | None = None,
    device: str = "cpu",
    progress: bool = True,
    archs=None,
    train_variants=None,
) -> dict:
    """Write ``<out>/gradcam/`` (overlays, index and attention tables); return a small summary."""
    import pandas as pd
    import torch
    from tqdm import tqdm

    from generator.atomic import write_bytes_atomic, write_json_atomic
    from generator.variants import ALL_TEST, CLEAN_TEST
    from generator.variants.store import encode_png
    from generator.variants.verified import check_same_images
    from training.data.datasets import HAMArtefacts
    from training.data.transforms import eval_transform
    from training.models import load_trained

    from .aggregate import t_interval
    from .output import write_table

    data_dir, out_dir = Path(data_dir), Path(out_dir)
    # both opened through their manifest entries, and holding the same images (one build)
    clean_set = HAMArtefacts(data_dir, CLEAN_TEST, target_types="artefact_mask")
    artefact_set = HAMArtefacts(data_dir, ALL_TEST, target_types="artefact_mask")
    clean_reader, artefact_reader = clean_set.reader, artefact_set.reader
    check_same_images(
        clean_reader.image_ids, artefact_reader.image_ids, artefact_reader.path, clean_reader.path
    )
    models = find_models(runs_dir, fold, archs, train_variants)
    rows = sample_images(artefact_reader.labels, artefact_reader.artefact_kinds, n_images, seed)
    gradcam_dir = out_dir / "gradcam"
    records = []
    bar = tqdm(total=len(models) * len(rows), desc="grad-cam", unit="image", disable=not progress)
    for arch, train, run_dir in models:
        model, config = load_trained(run_dir, map_location=device)
        model.to(device)
        clean_set.transforms = artefact_set.transforms = eval_transform(config["image_size"])
        for row in rows:
            image_id = artefact_reader.image_ids[row]
            try:
                clean_row = clean_reader.index_of(image_id)
            except KeyError as exc:
                raise UserError(f"{data_dir / 'test_none.h5'}: no image {image_id} (in test_all.h5)") from exc
            with_artefact, mask = _prepare(artefact_set, row)
            clean, _ = _prepare(clean_set, clean_row)
            cams = {
                name: grad_cam(model, arch, image.to(device))[0]
                for name, image in (("clean", clean), ("artefact", with_artefact))
            }
            paths = {}
            for name, image in (("clean", clean), ("artefact", with_artefact)):
                rel = Path("gradcam") / arch / train / f"{image_id}_{name}.png"
                write_bytes_atomic(out_dir / rel, encode_png(_overlay(image, cams[name])))
                paths[name] = rel.as_posix()
            records.append(
                {
                    "arch": arch,
                    "train_variant": train,
                    "image_id": image_id,
                    "dx": CLASSES[int(artefact_reader.labels[row])],
                    "kind": artefact_reader.artefact_kinds[row],
                    "clean_png": paths["clean"],
                    "artefact_png": paths["artefact"],
                    "attention_clean": artefact_attention(cams["clean"], mask),
                    "attention_artefact": artefact_attention(cams["artefact"], mask),
                }
            )
            bar.update()
        del model
        if device != "cpu":
            torch.cuda.empty_cache()
    bar.close()
    index = pd.DataFrame(records, columns=INDEX_COLUMNS)
    summary = []
    for (arch_name, train_name), group in index.groupby(["arch", "train_variant"], sort=False):
        values = group["attention_artefact"].dropna().to_numpy()
        mean, lo, hi = t_interval(values)
        summary.append(
            {
                "arch": arch_name,
                "train_variant": train_name,
                "n": len(values),
                "attention_mean": mean,
                "attention_ci_lo": lo,
                "attention_ci_hi": hi,
            }
        )
    write_table(index, gradcam_dir, "index")
    write_table(pd.DataFrame(summary, columns=ATTENTION_COLUMNS), gradcam_dir, "attention")
    info = {
        "n_models": len(models),
        "n_images": len(rows),
        "seed": seed,
        "data": str(data_dir),
        "runs": str(runs_dir),
        "layer": "layer4 (classifier) / backbone.body.layer4 (detectors)",
        "method": "pytorch-grad-cam GradCAM",
        "models": [{"arch": a, "train_variant": t, "run": str(r)} for a, t, r in models],
    }
    write_json_atomic(gradcam_dir / "gradcam.json", info)
    _note_in_results(out_dir, info)
    return info


def _note_in_results(out_dir: Path, info: dict) -> None:
    """Record the Grad-CAM run in results.json when evaluate already wrote one."""
    from generator.atomic import write_json_atomic

    path = out_dir / "results.json"
    if path.is_file():
        results = json.loads(path.read_text())
        results["gradcam"] = {k: info[k] for k in ("n_models", "n_images", "seed", "method", "layer")}
        write_json_atomic(path, results)
