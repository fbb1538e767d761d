"""The names of the Harvard Dataverse HAM10000 layout (doi:10.7910/DVN/DBW86T): files, folders,
columns and the published per-class counts. ``ham10000`` reads the layout, ``synth`` writes it."""

from __future__ import annotations

import re

METADATA_STEM = "HAM10000_metadata"
REQUIRED_COLUMNS = ("lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization", "dataset")
METADATA_KEYS = ("dx", "dx_type", "age", "sex", "localization", "dataset")
ONEHOT_COLUMNS = ("image", "MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")
TEST_IMAGES_DIR_PREFIX = "ISIC2018_Task3_Test_Images"
TEST_TABLE_PREFIX = "ISIC2018_Task3_Test"
TABLE_SUFFIXES = ("", ".csv", ".tab", ".tsv", ".txt")
MASK_SUFFIX = "_segmentation.png"
SYNTHETIC_MARKER = "SYNTHETIC.txt"
# The Harvard Dataverse file names, as ``ham-artefacts synth-ham10000`` writes them (the reader
# accepts any .csv/.tab/.txt table and finds images and masks in any sub-folder).
METADATA_NAME = f"{METADATA_STEM}.csv"
TRAIN_IMAGE_DIRS = ("HAM10000_images_part_1", "HAM10000_images_part_2")
MASK_DIR = "HAM10000_segmentations_lesion_tschandl"
TEST_IMAGES_DIR = TEST_IMAGES_DIR_PREFIX
TEST_GROUND_TRUTH_NAME = f"{TEST_TABLE_PREFIX}_GroundTruth.csv"

EXPECTED_COUNTS: dict[str, dict[str, int]] = {
    "train": {"nv": 6705, "mel": 1113, "bkl": 1099, "bcc": 514, "akiec": 327, "vasc": 142, "df": 115},
    "test": {"nv": 908, "mel": 171, "bkl": 217, "bcc": 93, "akiec": 43, "vasc": 35, "df": 44},
}
"""Per-class image counts of the published HAM10000 training set and ISIC 2018 Task 3 test set."""

IMAGE_NAME = re.compile(r"^(ISIC_\d+)\.(jpe?g)$", re.IGNORECASE)
MASK_NAME = re.compile(r"^(ISIC_\d+)_segmentation\.png$", re.IGNORECASE)

AGE_RANGE = (0.0, 120.0)
"""Plausible ages in years (HAM10000 lists 0 to 85); any other value is stored as unknown (NaN)."""
