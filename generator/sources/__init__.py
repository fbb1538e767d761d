"""Data sources: read a HAM10000 folder (real or synthetic) into records, images and lesion masks.

Only the Harvard Dataverse HAM10000 layout is supported (``generator.sources.ham10000``); the
synthetic stand-in written by ``ham-artefacts synth-ham10000`` uses the same layout
(``generator.sources.synth``); ``segmentation`` draws a lesion mask where a source has none.
"""

from .ham10000 import (
    EXPECTED_COUNTS,
    Source,
    SourceRecord,
    expected_counts_report,
    load_source,
    read_image,
    read_mask,
)

__all__ = [
    "EXPECTED_COUNTS",
    "Source",
    "SourceRecord",
    "expected_counts_report",
    "load_source",
    "read_image",
    "read_mask",
]
