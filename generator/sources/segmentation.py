"""Classical automatic lesion segmentation for dermatoscopic images without a provided mask.

Steps (on a copy shrunk to at most ``work_side`` pixels, for speed):

1. darkness channel: the mean of green and blue, where pigment and blood both absorb;
2. thin dark hairs removed by a grey-level closing (DullRazor-style), then Gaussian smoothing;
3. the dermatoscope's dark field-of-view corners (very dark regions touching the image border)
   are found and excluded, so they neither skew the threshold nor become "the lesion";
4. Otsu threshold inside the field of view; morphological opening/closing;
5. the connected component that is largest and most central wins; holes are filled.

The result is a 0/1 uint8 mask at the input size. If nothing plausible is found, a central
ellipse is returned so callers always get a non-empty mask.
"""

from __future__ import annotations

import numpy as np


def _odd(n: float) -> int:
    n = max(3, int(round(n)))
    return n if n % 2 else n + 1


def field_of_view(gray: np.ndarray) -> np.ndarray:
    """Boolean mask of the dermatoscope's field of view: False on dark corners touching the border.

    ``gray`` is uint8. A pixel belongs to a dark corner if it is much darker than the bright
    part of the image and its dark region connects to the image border through a corner area.
    """
    import cv2

    h, w = gray.shape
    bright = float(np.percentile(gray, 90))
    dark = (gray < min(45.0, 0.3 * bright)).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    if n <= 1:
        return np.ones_like(gray, bool)
    # Corner regions: components that touch at least one image corner square.
    c = max(2, int(0.06 * min(h, w)))
    corner_labels = set()
    for ys, xs in (
        (slice(0, c), slice(0, c)),
        (slice(0, c), slice(w - c, w)),
        (slice(h - c, h), slice(0, c)),
        (slice(h - c, h), slice(w - c, w)),
    ):
        corner_labels.update(np.unique(labels[ys, xs]).tolist())
    corner_labels.discard(0)
    if not corner_labels:
        return np.ones_like(gray, bool)
    outside = np.isin(labels, list(corner_labels))
    # Grow a little: the vignette's soft edge is dark too.
    k = _odd(0.02 * min(h, w))
    outside = cv2.dilate(outside.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)
    return ~outside


def _central_ellipse(h: int, w: int) -> np.ndarray:
    import cv2

    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 2, h // 2), (max(1, w // 5), max(1, h // 5)), 0, 0, 360, 1, -1)
    return mask


def segment_lesion(rgb: np.ndarray, work_side: int = 256) -> np.ndarray:
    """0/1 uint8 lesion mask (HxW) of an RGB uint8 dermatoscopic image."""
    import cv2

    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {rgb.dtype} {rgb.shape}")
    h, w = rgb.shape[:2]
    scale = min(1.0, work_side / max(h, w))
    sw, sh = max(8, int(round(w * scale))), max(8, int(round(h * scale)))
    # Shrunk for speed; an image under 8 pixels a side is enlarged to 8 (the filters need a few pixels).
    small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA) if (sw, sh) != (w, h) else rgb
    fov = field_of_view(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))

    # Hair removal: a grey-level closing with a disc wider than a hair fills thin dark lines.
    k_hair = _odd(0.03 * min(sw, sh))
    small = cv2.morphologyEx(
        small, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k_hair, k_hair))
    )
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=0.01 * min(sw, sh) + 0.5)
    lab = cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)

    # Reference skin colour: the median of a band along the border, inside the field of view.
    band = np.zeros((sh, sw), bool)
    bw = max(1, int(0.12 * min(sw, sh)))
    band[:bw], band[-bw:], band[:, :bw], band[:, -bw:] = True, True, True, True
    ref_pixels = lab[band & fov]
    if ref_pixels.shape[0] < 16:
        ref_pixels = lab[fov] if fov.sum() >= 16 else lab.reshape(-1, 3)
    ref = np.median(ref_pixels, axis=0)
    # Distance from skin: darker than skin counts (pigment), lighter does not (vignetting leaves the
    # centre brighter than the border band); chroma counts both ways (red vessels, blue-grey veils).
    darker = np.maximum(ref[0] - lab[..., 0], 0.0)
    dist = np.sqrt(darker**2 + 1.5 * ((lab[..., 1] - ref[1]) ** 2 + (lab[..., 2] - ref[2]) ** 2))
    channel = (
        np.clip(dist * (255.0 / max(float(np.percentile(dist[fov], 99.5)), 1e-3)), 0, 255).astype(np.uint8)
        if fov.any()
        else np.zeros((sh, sw), np.uint8)
    )

    inside = channel[fov]
    if inside.size < 16 or int(inside.max()) - int(inside.min()) < 8:
        return _resize_mask(_central_ellipse(sh, sw), w, h)
    threshold, _ = cv2.threshold(inside.reshape(-1, 1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    lesion = _best_component(channel, fov, threshold)
    fov_area = max(1, int(fov.sum()))
    if lesion is None or (lesion.sum() > 0.45 * fov_area and _touches_border(lesion)):
        # Probably skin mottling or shading merged with the lesion: retry with the upper Otsu level
        # (the threshold between "somewhat unlike skin" and "very unlike skin").
        upper = inside[inside > threshold]
        if upper.size >= 16 and int(upper.max()) - int(upper.min()) >= 8:
            t2, _ = cv2.threshold(upper.reshape(-1, 1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
            retry = _best_component(channel, fov, t2)
            if retry is not None:
                lesion = retry
    if lesion is None:
        return _resize_mask(_central_ellipse(sh, sw), w, h)
    return _resize_mask(lesion, w, h)


def _touches_border(mask: np.ndarray) -> bool:
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def _best_component(channel: np.ndarray, fov: np.ndarray, threshold: float) -> np.ndarray | None:
    """The largest, most central component of ``channel > threshold`` inside the field of view, holes filled."""
    import cv2
    from scipy import ndimage

    sh, sw = channel.shape
    fg = ((channel > threshold) & fov).astype(np.uint8)
    k = _odd(0.02 * min(sw, sh))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, disc)
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, disc)

    n, labels, stats, centroids = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if n <= 1:
        return None
    areas = stats[1:, cv2.CC_STAT_AREA].astype(float)
    # Distance of each component's centroid from the centre, relative to the half-diagonal.
    d = np.hypot((centroids[1:, 0] - sw / 2) / (sw / 2), (centroids[1:, 1] - sh / 2) / (sh / 2)) / np.sqrt(2)
    touches = (
        (stats[1:, cv2.CC_STAT_LEFT] == 0)
        | (stats[1:, cv2.CC_STAT_TOP] == 0)
        | (stats[1:, cv2.CC_STAT_LEFT] + stats[1:, cv2.CC_STAT_WIDTH] >= sw)
        | (stats[1:, cv2.CC_STAT_TOP] + stats[1:, cv2.CC_STAT_HEIGHT] >= sh)
    )
    score = areas * (1.0 - 0.75 * d) * np.where(touches & (d > 0.35), 0.3, 1.0)
    best = 1 + int(np.argmax(score))
    if areas[best - 1] < 0.002 * sw * sh:
        return None
    return ndimage.binary_fill_holes(labels == best).astype(np.uint8)


def _resize_mask(mask: np.ndarray, w: int, h: int) -> np.ndarray:
    import cv2

    if mask.shape != (h, w):
        # Linear interpolation of the 0/1 mask then threshold gives smoother edges than nearest.
        mask = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5
    return np.ascontiguousarray(mask, dtype=np.uint8)
