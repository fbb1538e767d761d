"""Dataset cards that data hubs read: a Hugging Face ``README.md`` and MLCommons Croissant 1.0 metadata.

Both are derived from a folder's manifest (``generate`` writes them beside the files, with paths
relative to the folder; ``publish`` writes them with ``base_url`` filled in). The card's prose is
:func:`datacard`; licence and citation texts come from the manifest and
:mod:`generator.distribution.info` only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

CARD_NAME = "README.md"
CROISSANT_NAME = "croissant.json"
CROISSANT_CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
HDF5_MEDIA_TYPE = "application/x-hdf5"

# The JSON-LD context of Croissant 1.0 (the specification's, as mlcroissant writes it).
CROISSANT_CONTEXT = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}

_SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))


def licence_id(manifest: dict) -> tuple[str, str]:
    """(Hugging Face licence id, URL) of the licence the manifest records (HAM10000's when unknown)."""
    from ..licences import HAM10000_LICENCE, LICENCE_IDS

    text = str(manifest.get("licence") or "")
    for name, (identifier, url) in LICENCE_IDS.items():
        if text.rstrip(". ").endswith(name):
            return identifier, url
    return LICENCE_IDS[HAM10000_LICENCE]


def size_category(rows: int) -> str:
    """Hugging Face ``size_categories`` value for a number of rows."""
    return next((label for limit, label in _SIZE_CATEGORIES if rows < limit), "n>1M")


def families_of(manifest: dict) -> list[str]:
    """The artefact families of a build (manifests record them only when not the paper's three)."""
    from ..artefacts.kinds import DEFAULT_FAMILIES

    return list(manifest.get("families") or DEFAULT_FAMILIES)


def _file_url(manifest: dict, name: str) -> str:
    return (manifest.get("base_url") or "") + name


def _yaml(value) -> str:
    """A YAML scalar: JSON strings are valid YAML and need no escaping rules of our own."""
    return json.dumps(value, ensure_ascii=False)


def front_matter(manifest: dict) -> str:
    """The YAML header of a Hugging Face dataset card (licence, task, size, one config per variant)."""
    identifier, _ = licence_id(manifest)
    rows = sum(int(f.get("rows", 0)) for f in manifest["files"])
    tags = [
        "medical",
        "dermatology",
        "dermoscopy",
        "skin-lesion",
        "HAM10000",
        "artefacts",
        "spurious-correlations",
    ]
    tags += [f"artefact-{family}" for family in families_of(manifest)]
    if manifest.get("synthetic"):
        tags.append("synthetic")
    lines = [
        "---",
        f"license: {identifier}",
        f"pretty_name: {_yaml('HAM10000 artefact variants (ham-artefacts)')}",
        "task_categories:",
        "- image-classification",
        "tags:",
        *[f"- {_yaml(t)}" for t in tags],
        "size_categories:",
        f"- {size_category(rows)}",
        "configs:",
    ]
    for f in manifest["files"]:
        lines += [
            f"- config_name: {_yaml(f.get('variant', Path(f['name']).stem))}",
            "  data_files:",
            f"  - split: {_yaml(f.get('split', 'train'))}",
            f"    path: {_yaml(f['name'])}",
        ]
    lines.append("---")
    return "\n".join(lines)


def huggingface_card(manifest: dict, linked: bool = False) -> str:
    """README.md: YAML front matter, then the data card's prose."""
    return front_matter(manifest) + "\n\n" + datacard(manifest, linked=linked)


def croissant(manifest: dict) -> dict:
    """Croissant 1.0 JSON-LD: one FileObject per HDF5 file (SHA-256, URL, media type) and one RecordSet
    per variant whose fields are the file's per-row datasets (``generator.variants.store.RECORD_FIELDS``)."""
    from ..licences import CITATION
    from ..variants.store import RECORD_FIELDS

    _, licence_url = licence_id(manifest)
    families = families_of(manifest)
    description = (
        "Dermatoscopic images of HAM10000 with inserted artefacts (families: "
        + ", ".join(families)
        + "), one HDF5 file per variant; clean and artefacted variants are paired."
    )
    if manifest.get("synthetic"):
        description += " Synthetic build: the images are synthetic stand-ins, not HAM10000 pixels."
    dataset: dict[str, Any] = {
        "@context": CROISSANT_CONTEXT,
        "@type": "sc:Dataset",
        "name": "ham-artefacts",
        "description": description,
        "conformsTo": CROISSANT_CONFORMS_TO,
        "license": licence_url,
        "citeAs": str(manifest.get("citation") or CITATION),
        "version": str(manifest.get("generator_version", "0.0.0")),
        "isAccessibleForFree": True,
        "keywords": ["dermatology", "dermoscopy", "HAM10000", "artefacts", *families],
        "distribution": [],
        "recordSet": [],
    }
    if manifest.get("base_url"):
        dataset["url"] = manifest["base_url"]
    for f in manifest["files"]:
        dataset["distribution"].append(
            {
                "@type": "cr:FileObject",
                "@id": f["name"],
                "name": f["name"],
                "description": str(f.get("description", "")),
                "contentUrl": _file_url(manifest, f["name"]),
                "contentSize": f"{int(f['bytes'])} B",
                "encodingFormat": HDF5_MEDIA_TYPE,
                "sha256": f["sha256"],
            }
        )
        variant = str(f.get("variant", Path(f["name"]).stem))
        dataset["recordSet"].append(
            {
                "@type": "cr:RecordSet",
                "@id": variant,
                "name": variant,
                "description": str(f.get("description", "")),
                "field": [
                    {
                        "@type": "cr:Field",
                        "@id": f"{variant}/{name}",
                        "name": name,
                        "description": meaning,
                        "dataType": data_type,
                        "source": {"fileObject": {"@id": f["name"]}, "extract": {"column": column}},
                    }
                    for name, column, data_type, meaning in RECORD_FIELDS
                ],
            }
        )
    return dataset


def write_cards(folder: str | os.PathLike, manifest: dict, linked: bool = False) -> list[Path]:
    """Write ``README.md`` and ``croissant.json`` into ``folder`` (atomically); returns their paths."""
    from ..atomic import write_json_atomic, write_text_atomic

    folder = Path(folder)
    write_text_atomic(folder / CARD_NAME, huggingface_card(manifest, linked=linked))
    write_json_atomic(folder / CROISSANT_NAME, croissant(manifest))
    return [folder / CARD_NAME, folder / CROISSANT_NAME]


def known_limitations(manifest: dict) -> list[str]:
    """The card's "Known limitations" section (Markdown lines, ending with a blank line)."""
    size = manifest.get("image_size")
    size_note = f" This build's images are {size[0]}×{size[1]} px." if size else ""
    lines = ["## Known limitations", ""]
    if manifest.get("synthetic"):
        lines.append(
            "- **Synthetic twin, not HAM10000.** The images are a synthetic twin of HAM10000 "
            "(`ham-artefacts synth-ham10000`): lesions, classes and hair are modelled, not photographed. "
            "Results on them show whether a pipeline can measure an artefact shortcut, not how a model "
            "behaves on real dermatoscopic images."
        )
    lines += [
        # The figures are the study's visibility measurement (site/study.md, "Can the model see the artefacts?").
        "- **Small images hide thin artefacts.** Thin, faint kinds nearly vanish when the images are small "
        "or shrunk to the model's input. Median share of pixels changed by more than 24 grey levels, "
        "built-in templates: 128×96 px images at a 64 px input, vertical rulers 0.0 % (circle markings "
        "1.2 %, bubbles 8.1 %); 600×450 px at 224 px, vertical rulers 0.4 %. Vertical rulers lie at the "
        "very edge, often mostly outside the image; the seed study's real templates behave the same. A "
        "row whose `has_artefact` is true may look clean to a model: compare effects per artefact kind."
        + size_note,
        "- **Only the inserted artefacts are labelled.** `has_artefact`, `artefact_kinds`, the artefact "
        "masks and the label CSVs describe the inserted artefact alone; artefacts that the source images "
        "already show (hair, rulers, ink, dark corners"
        + (
            "; the synthetic twin draws hair strands in 55 % of its images"
            if manifest.get("synthetic")
            else ""
        )
        + ") are not labelled.",
        "- **Automatic lesion masks.** Rows whose `mask_source` is `auto` (where the source has no "
        "segmentation, e.g. HAM10000's test set) carry an automatic segmentation, and artefacts are placed "
        "around it.",
        "",
    ]
    return lines


def datacard(manifest: dict, linked: bool = False) -> str:
    """README.md of an upload folder: what is in it, how to get and read it, licence, citation."""
    from .. import CLASSES
    from ..artefacts.kinds import FAMILIES, KINDS
    from ..licences import (
        CITATION,
        HAM10000_CITATION,
        HAM10000_LICENCE,
        HAM10000_LICENCE_URL,
        TEMPLATES_ATTRIBUTION,
        ham10000_attribution,
    )
    from ..variants import store

    base = manifest.get("base_url") or ""
    families = families_of(manifest)
    kinds = [name for family in families for name in FAMILIES.get(family, ())]
    lines = [
        "# ham-artefacts datasets",
        "",
        "HAM10000 dermatoscopic images with inserted artefacts, one HDF5 file per variant. Clean and "
        "artefacted variants are paired: the same image carries the same artefact in every variant that "
        "includes it.",
        "",
        f"Artefact families of this build: {', '.join(families)} (kinds: {', '.join(kinds)}); an artefacted "
        "image gets one family drawn uniformly, then one of its kinds.",
        "",
    ]
    if manifest.get("synthetic"):
        lines += [
            "> **Synthetic**: these files were built from synthetic stand-in images, not from the real "
            "HAM10000 data. Use them for testing pipelines only.",
            "",
        ]
    lines += [
        f"Generator version {manifest.get('generator_version', '?')}, seed {manifest.get('seed', '?')}, "
        f"templates `{manifest.get('templates', '?')}`, image size {manifest.get('image_size')}.",
        "",
        "## Get it",
        "",
        "```bash",
        f"ham-artefacts fetch --manifest {base}manifest.json --out data/   # resumes, verifies SHA-256",
        "```",
        "",
        "```python",
        "from training.datasets import HAMArtefacts",
        "",
        f"ds = HAMArtefacts({_yaml('data/')}, {_yaml('test_all')}, download=True, manifest={_yaml(base + 'manifest.json')})",
        "image, label = ds[0]  # target_types=('label', 'lesion_mask', ...) for masks, boxes, metadata",
        "```",
        "",
        "## Files",
        "",
        "| file | split | rows | with artefact | bytes | SHA-256 |",
        "|---|---|---:|---:|---:|---|",
    ]
    for f in manifest["files"]:
        lines.append(
            f"| `{f['name']}` | {f.get('split', '')} | {f.get('rows', '')} | {f.get('n_artefact', '')} "
            f"| {f['bytes']} | `{f['sha256']}` |"
        )
    lines += [
        "",
        "Descriptions:",
        "",
    ]
    lines += [f"- `{f.get('variant', f['name'])}`: {f.get('description', '')}" for f in manifest["files"]]
    lines += [
        "",
        "Also here:",
        "",
        f"- `{CROISSANT_NAME}`: MLCommons Croissant 1.0 metadata of the files (SHA-256, URLs) and their "
        "per-row fields.",
        "- `manifest.json`: the list above as JSON (format `ham-artefacts-manifest/1`): per file its SHA-256, "
        "size, rows, class counts and artefact counts. `base_url` says where the files live.",
        "- `labels/<variant>_bissoto.csv`: artefact labels in the column convention of Bissoto et al.'s ISIC "
        "annotations (`image;dark_corner;hair;gel_border;gel_bubble;ruler;ink;patches;label;label_string`, "
        "semicolon-separated, 0/1; "
        + ", ".join(f"{name} -> {KINDS[name].bissoto_column}" for name in kinds if name in KINDS)
        + "; `label` is the "
        "7-class index, `label_string` the HAM10000 class code, `image` the image_id without a file "
        "extension; unlike the original there is no leading index column).",
        "- `labels/<variant>_artefacts.csv`: per image its kind, template and placement.",
        "- `examples/`: one clean | artefact example per kind (when present).",
        "",
        "Classes (label = index): " + ", ".join(f"{i} {c}" for i, c in enumerate(CLASSES)) + ".",
        "",
        "## File layout",
        "",
        "```text",
        (store.__doc__ or "").strip(),
        "```",
        "",
        *known_limitations(manifest),
        "## Licence and attribution",
        "",
        *(
            [
                f"- **Images (this build)**: synthetic stand-ins, {manifest.get('licence', '')}. Builds from "
                "the real HAM10000 carry the licence below."
            ]
            if manifest.get("synthetic")
            else []
        ),
        f"- **Images**: {ham10000_attribution(families)}",
        f"  Licence: [{HAM10000_LICENCE}]({HAM10000_LICENCE_URL}).",
        f"- **Licence recorded in the manifest**: {manifest.get('licence', '')}",
        f"- **Artefact templates**: {TEMPLATES_ATTRIBUTION}",
        "- **Labels and manifest**: same licence as the images they describe ("
        + ("this build: the licence recorded in the manifest; " if manifest.get("synthetic") else "")
        + f"HAM10000-derived data: {HAM10000_LICENCE}).",
        "",
        "## Citation",
        "",
        str(manifest.get("citation") or CITATION),
        "",
        f"HAM10000: {HAM10000_CITATION}",
        "",
    ]
    if linked:
        lines += ["<!-- variant files in this folder are hard links to the generated data -->", ""]
    return "\n".join(lines)
