"""From detections to image-level class scores, so detectors are scored like the classifier.

The rule (the detectors run with ``box_score_thresh=0``, so every class usually has detections):

* the score of class c is the highest score among the detections labelled c (0 when none is);
* the predicted class is the label of the top-scoring detection;
* an image with no detection at all gets uniform scores (1/7 each) and ``y_pred = -1``, which
  matches no true label, so it counts as incorrect.

Detector labels are shifted by one (0 is the background), so detector label ``c + 1`` is class ``c``.
"""

from __future__ import annotations

import contextlib

import numpy as np

from generator import NUM_CLASSES

NO_DETECTION = -1


def image_scores(detections: list[dict], num_classes: int = NUM_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """(scores N x num_classes float, y_pred N int) for a list of torchvision detection outputs.

    Each detection dict holds ``labels`` (1..num_classes) and ``scores`` tensors (or arrays).
    """
    scores = np.zeros((len(detections), num_classes), dtype=np.float64)
    y_pred = np.full(len(detections), NO_DETECTION, dtype=np.int64)
    for i, det in enumerate(detections):
        labels = np.asarray(_numpy(det["labels"]), dtype=np.int64) - 1
        det_scores = np.asarray(_numpy(det["scores"]), dtype=np.float64)
        keep = (labels >= 0) & (labels < num_classes)
        labels, det_scores = labels[keep], det_scores[keep]
        if labels.size == 0:
            scores[i] = 1.0 / num_classes
            continue
        np.maximum.at(scores[i], labels, det_scores)
        y_pred[i] = labels[int(np.argmax(det_scores))]
    return scores, y_pred


def _numpy(x):
    if hasattr(x, "detach"):
        return x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    return x


@contextlib.contextmanager
def boxes_only(model):
    """Skip Mask R-CNN's mask branch while predicting classes: masks do not enter the scores above,
    and painting 100 masks per image is most of Mask R-CNN's inference time on CPU."""
    heads = getattr(model, "roi_heads", None)
    saved = getattr(heads, "mask_roi_pool", None)
    if saved is not None:
        heads.mask_roi_pool = None
    try:
        yield model
    finally:
        if saved is not None:
            heads.mask_roi_pool = saved
