"""Template banks: signed RGB difference templates grouped into template sets per artefact kind.

A template is an int16 HxWx3 array that is *added* to an image (then clipped to [0, 255]). Banks come
from the original meta.json layout (``TemplateBank.from_directory``) or are procedural
(``TemplateBank.builtin(seed)``, the embedded default).
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError
from .kinds import FAMILIES, KINDS, family_kinds, kind_for_meta, resolve_families

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff")
# "with"/"without" as a separate token of a file stem: ISIC_1_with_03, ISIC_1_03_without, ISIC_1_with
_PAIR_TOKEN = re.compile(r"(?:(?<=[_\-. ])|^)(with|without)(?=[_\-. ]|$)", re.IGNORECASE)


@dataclass(frozen=True)
class TemplateLevel:
    """A template at 1/2**k resolution, prepared for fast warping (computed once, then cached).

    Everything here is a deterministic function of the template pixels, so caching it can never
    change an output.
    """

    pixels: np.ndarray
    """int16 HxWx3 at this level."""
    planes: tuple[tuple[np.ndarray, int, int], ...]
    """``(uint8 HxWx4, sign, bias)``: the level equals ``sum(sign * plane[..., :3] + bias)``. OpenCV warps
    4-channel uint8 images several times faster than int16 ones; a template whose values span at most
    255 levels needs one offset plane, others a positive and a negative plane."""
    support_sat: np.ndarray
    """Summed-area table (int32, (H+1)x(W+1)) of the non-zero pixels, to skip empty output tiles."""

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.pixels.shape[0]), int(self.pixels.shape[1])


def _prepare_level(pixels: np.ndarray) -> TemplateLevel:
    low, high = min(int(pixels.min()), 0), max(int(pixels.max()), 0)
    height, width = pixels.shape[:2]

    def plane(values: np.ndarray) -> np.ndarray:
        packed = np.zeros((height, width, 4), dtype=np.uint8)
        packed[:, :, :3] = values
        return packed

    planes: tuple[tuple[np.ndarray, int, int], ...]
    if high - low <= 255:
        planes = ((plane(pixels - low), 1, low),)
    else:
        planes = ((plane(np.maximum(pixels, 0)), 1, 0), (plane(np.maximum(-pixels, 0)), -1, 0))
    support = np.any(pixels != 0, axis=2).astype(np.int32)
    sat = np.zeros((height + 1, width + 1), dtype=np.int32)
    sat[1:, 1:] = support.cumsum(axis=0).cumsum(axis=1)
    return TemplateLevel(pixels, planes, sat)


def _half_resolution(pixels: np.ndarray) -> np.ndarray:
    """2x2 box average (zero-padded to even size), rounded half up: the next mip level."""
    height, width = pixels.shape[:2]
    padded = np.zeros((height + height % 2, width + width % 2, 3), dtype=np.int32)
    padded[:height, :width] = pixels
    summed = padded[0::2, 0::2] + padded[1::2, 0::2] + padded[0::2, 1::2] + padded[1::2, 1::2]
    return np.floor_divide(summed + 2, 4).astype(np.int16)


@dataclass(frozen=True)
class Template:
    id: str
    """``<set name>/<template name>``, unique within a bank; records refer to templates by it."""
    kind: str
    pixels: np.ndarray = field(repr=False, compare=False)
    """int16 HxWx3 signed difference, cropped to the bounding box of its non-zero pixels."""
    _levels: dict = field(default_factory=dict, repr=False, compare=False)

    @functools.cached_property
    def shape(self) -> tuple[int, int]:
        return int(self.pixels.shape[0]), int(self.pixels.shape[1])

    def level(self, k: int) -> TemplateLevel:
        """The template at 1/2**k resolution, prepared for warping (cached per template)."""
        if k not in self._levels:
            pixels = self.pixels if k == 0 else _half_resolution(self.level(k - 1).pixels)
            self._levels[k] = _prepare_level(pixels)
        return self._levels[k]


@dataclass(frozen=True)
class TemplateSet:
    """Templates extracted from one source photograph (one meta.json entry); insertion draws one set."""

    name: str
    kind: str
    templates: tuple[Template, ...]


def crop_to_content(pixels: np.ndarray) -> np.ndarray | None:
    """The bounding box of the non-zero pixels of a template (None if all zero), as contiguous int16."""
    nonzero = np.any(pixels != 0, axis=2)
    rows, cols = np.nonzero(np.any(nonzero, axis=1))[0], np.nonzero(np.any(nonzero, axis=0))[0]
    if rows.size == 0:
        return None
    cropped = pixels[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return np.ascontiguousarray(cropped, dtype=np.int16)


class TemplateBank:
    """An immutable collection of template sets for the registered artefact kinds."""

    def __init__(self, sets: list[TemplateSet], source: str, families: tuple[str, ...] | None = None):
        self.source = source
        """How the bank was made: ``builtin:<seed>`` or the directory path."""
        self.families = families
        """The families this bank was restricted to (:meth:`for_families`), or None for a whole bank."""
        self._restricted: dict[tuple[tuple[str, ...], bool], TemplateBank] = {}
        self.sets: dict[str, list[TemplateSet]] = {name: [] for name in KINDS}
        self.templates: dict[str, Template] = {}
        for template_set in sets:
            self.sets[template_set.kind].append(template_set)
            for template in template_set.templates:
                if template.id in self.templates:
                    raise UserError(f"{source}: duplicate template id {template.id!r}")
                self.templates[template.id] = template
        self._fingerprint: str | None = None

    # ----------------------------------------------------------------------------------- building
    @classmethod
    def builtin(cls, seed: int = 0) -> TemplateBank:
        """Procedural templates for every kind, generated from ``seed`` with no data files."""
        return _builtin_bank(int(seed))

    @classmethod
    def from_directory(cls, path: str | Path) -> TemplateBank:
        """Read the original meta.json layout (see ../shared/artefact-templates/README.md).

        ``preprocessor == "difference"`` entries hold ``*with*``/``*without*`` pairs (template = with -
        without, per RGB channel, signed); other entries hold stamps on white (template = image - 255).
        ``psd_file`` and ``original_file`` are ignored.
        """
        root = Path(path)
        meta_path = root / "meta.json"
        if not root.is_dir():
            raise UserError(f"{root}: template directory does not exist")
        if not meta_path.is_file():
            raise UserError(f"{meta_path}: missing (a template directory needs a meta.json)")
        from ..userio import read_json

        meta = read_json(meta_path)
        entries = meta.get("artefacts") if isinstance(meta, dict) else None
        if not isinstance(entries, list):
            raise UserError(f"{meta_path}: expected an object with an 'artefacts' list")
        sets = []
        for number, entry in enumerate(entries):
            where = f"{meta_path}: artefacts[{number}]"
            if not isinstance(entry, dict) or "class" not in entry or "artefact_folder" not in entry:
                raise UserError(f"{where}: needs 'class' and 'artefact_folder'")
            kind_name = kind_for_meta(entry["class"], entry.get("subclass"))
            if kind_name is None:
                raise UserError(
                    f"{where}: unknown class/subclass {entry['class']!r}/{entry.get('subclass')!r}"
                )
            folder = root / entry["artefact_folder"]
            name = str(entry.get("name") or Path(entry["artefact_folder"]).name)
            if entry.get("preprocessor") == "difference":
                pairs = _read_pairs(folder)
            else:
                pairs = _read_stamps(folder)
            templates = tuple(Template(f"{name}/{key}", kind_name, pixels) for key, pixels in pairs)
            if not templates:
                raise UserError(f"{folder}: no template images (or only empty differences)")
            sets.append(TemplateSet(name, kind_name, templates))
        return cls(sets, source=str(root))

    @classmethod
    def load(cls, spec: str, seed: int = 0) -> TemplateBank:
        """``"builtin"`` -> :meth:`builtin` (``seed``); anything else is a template directory."""
        if str(spec) == "builtin":
            return cls.builtin(seed)
        path = Path(spec)
        if not path.is_dir():
            raise UserError(f"--templates: {spec!r} is neither 'builtin' nor an existing directory")
        return _directory_bank(str(path.resolve()), _directory_stamp(path))

    def for_families(self, families, strict: bool = True) -> TemplateBank:
        """This bank with only the template sets of ``families`` (cached).

        Insertion draws a family among those present in the bank, so the sub-bank is what a build with
        ``generate --families`` draws from; its fingerprint covers its own sets only, so the paper's
        three families of the builtin bank keep the fingerprint they had before other kinds existed.
        With ``strict``, a UserError names a family without templates in this bank; otherwise such
        families are left out (a template folder with, say, bubbles only draws bubbles).
        """
        families = resolve_families(families)
        if (families, strict) not in self._restricted:
            wanted = set(family_kinds(families))
            for family in families if strict else ():
                if not any(self.sets[name] for name in FAMILIES[family]):
                    raise UserError(
                        f"--families: the template bank {self.source} has no {family!r} templates "
                        "(use --templates builtin, or add them with 'templates extract')"
                    )
            sets = [s for name in self.sets if name in wanted for s in self.sets[name]]
            self._restricted[families, strict] = TemplateBank(sets, self.source, families)
        return self._restricted[families, strict]

    # ----------------------------------------------------------------------------------- queries
    @property
    def fingerprint(self) -> str:
        """Stable hex digest of the bank's contents (ids, kinds, set membership and pixels)."""
        if self._fingerprint is None:
            digest = hashlib.sha256(b"ham-artefacts-templates/1")
            for kind_name in sorted(self.sets):
                for template_set in sorted(self.sets[kind_name], key=lambda s: s.name):
                    digest.update(f"\0set\0{kind_name}\0{template_set.name}".encode())
                    for template in template_set.templates:
                        digest.update(f"\0t\0{template.id}\0{template.pixels.shape}".encode())
                        digest.update(np.ascontiguousarray(template.pixels, dtype="<i2").tobytes())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint

    def counts(self) -> dict[str, int]:
        """Number of template sets per kind (every registered kind, zeros included)."""
        return {name: len(sets) for name, sets in self.sets.items()}

    def template_counts(self) -> dict[str, int]:
        """Number of individual templates per kind."""
        return {name: sum(len(s.templates) for s in sets) for name, sets in self.sets.items()}

    def kinds(self) -> list[str]:
        """Kinds with at least one template, in registry order."""
        return [name for name, sets in self.sets.items() if sets]

    def template(self, template_id: str) -> Template:
        try:
            return self.templates[template_id]
        except KeyError:
            raise UserError(
                f"record: template {template_id!r} is not in the template bank {self.source}"
            ) from None

    def __repr__(self) -> str:
        return f"TemplateBank({self.source!r}, {self.counts()})"


def _pair_key(stem: str) -> tuple[str, str] | None:
    """(role, key) for a with/without file stem, e.g. 'ISIC_1_03_without' -> ('without', 'ISIC_1_03')."""
    matches = list(_PAIR_TOKEN.finditer(stem))
    if not matches:
        return None
    match = matches[-1]  # the role comes after the set name, which may itself contain "with"
    key = (stem[: match.start()] + stem[match.end() :]).replace("__", "_").strip("_-. ")
    return match.group(1).lower(), key or stem


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                # transparent stamp pixels are "no artefact", i.e. white paper
                rgba = img.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
            return np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise UserError(f"{path}: not a readable image ({exc})") from None


def _image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise UserError(f"{folder}: template folder does not exist")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _read_pairs(folder: Path) -> list[tuple[str, np.ndarray]]:
    roles: dict[str, dict[str, Path]] = {}
    for path in _image_files(folder):
        parsed = _pair_key(path.stem)
        if parsed is None:
            raise UserError(f"{path}: a 'difference' template file must have 'with' or 'without' in its name")
        role, key = parsed
        roles.setdefault(key, {})[role] = path
    result = []
    for key in sorted(roles):
        pair = roles[key]
        if set(pair) != {"with", "without"}:
            present = next(iter(pair.values()))
            missing = "without" if "with" in pair else "with"
            raise UserError(f"{present}: no matching '{missing}' image in {folder}")
        with_image, without_image = _read_rgb(pair["with"]), _read_rgb(pair["without"])
        if with_image.shape != without_image.shape:
            raise UserError(
                f"{pair['with']}: size {with_image.shape[1]}x{with_image.shape[0]} differs from "
                f"{pair['without'].name} ({without_image.shape[1]}x{without_image.shape[0]})"
            )
        pixels = crop_to_content(with_image.astype(np.int16) - without_image.astype(np.int16))
        if pixels is not None:
            result.append((key, pixels))
    return result


def _read_stamps(folder: Path) -> list[tuple[str, np.ndarray]]:
    result = []
    for path in _image_files(folder):
        pixels = crop_to_content(_read_rgb(path).astype(np.int16) - 255)
        if pixels is not None:
            result.append((path.stem, pixels))
    return result


def _directory_stamp(path: Path) -> tuple:
    """Modification stamp of a template directory, so a cached bank is reloaded when files change."""
    stamps = []
    for file in sorted(path.rglob("*")):
        if file.is_file():
            stat = file.stat()
            stamps.append((str(file), stat.st_size, stat.st_mtime_ns))
    return tuple(stamps)


@functools.lru_cache(maxsize=4)
def _directory_bank(path: str, stamp: tuple) -> TemplateBank:
    return TemplateBank.from_directory(path)


@functools.lru_cache(maxsize=8)
def _builtin_bank(seed: int) -> TemplateBank:
    from .procedural import builtin_sets

    sets = []
    for set_name, kind_name, raw in builtin_sets(seed):
        templates = []
        for template_name, pixels in raw:
            cropped = crop_to_content(pixels)
            if cropped is not None:
                templates.append(Template(f"{set_name}/{template_name}", kind_name, cropped))
        sets.append(TemplateSet(set_name, kind_name, tuple(templates)))
    return TemplateBank(sets, source=f"builtin:{seed}")
