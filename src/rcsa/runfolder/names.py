"""The file names of a run folder: the only place that spells them.

A run folder is what ``rcsa run`` / ``rcsa measure`` write for one scan (every file below),
what ``rcsa batch`` writes per case (``cases/<case_id>/``), what ``rcsa screen`` writes as
``run/``, and, in part, what ``rcsa segment`` writes (the segmentation, its labels, the QC
overlays and :data:`SEGMENTATION_SUMMARY_JSON`). Everything else reads the names from here.
"""

from __future__ import annotations

#: The wide feature table: one row, columns = ``rcsa.measure.wide_columns()``.
FEATURES_CSV = "features.csv"
#: The same row as Parquet (missing values as nulls).
FEATURES_PARQUET = "features.parquet"
#: The long table: one row per level x structure x side x quantity.
FEATURES_LONG_CSV = "features_long.csv"
#: The level map, in the ``rcsa levels --json`` format.
LEVELS_JSON = "levels.json"
#: Labels on the input's grid (uint8 NIfTI), only on the level slices.
SEGMENTATION_NIFTI = "segmentation.nii.gz"
#: ``{"<id>": "<class name>"}`` of :data:`SEGMENTATION_NIFTI`.
SEGMENTATION_LABELS_JSON = "segmentation_labels.json"
#: ``rcsa segment`` only: areas, confidence and flags per level.
SEGMENTATION_SUMMARY_JSON = "segmentation_summary.json"
#: Vertebral heights, Genant grades, trabecular HU per vertebra (``rcsa.spine``,
#: ``docs/spine.md``); its columns are also in :data:`FEATURES_CSV`.
SPINE_JSON = "spine.json"
#: Versions, configuration, inputs, timings, warnings.
RUN_JSON = "run.json"
#: The folder of QC images: ``qc/levels.png``, ``qc/spine.png`` and ``qc/<level>.png``.
QC_DIR = "qc"
#: The name of the level map's QC image in :data:`QC_DIR` (:func:`qc_image`).
LEVEL_MAP_IMAGE = "levels"
#: The name of the sagittal spine sheet in :data:`QC_DIR` (body heights and grades).
SPINE_IMAGE = "spine"

#: Every file an ``rcsa run`` folder holds (the QC images aside).
RUN_FILES: tuple[str, ...] = (
    FEATURES_CSV, FEATURES_PARQUET, FEATURES_LONG_CSV, LEVELS_JSON, SEGMENTATION_NIFTI,
    SEGMENTATION_LABELS_JSON, SPINE_JSON, RUN_JSON,
)
#: The files a folder needs to be read as a run folder (:func:`rcsa.runfolder.is_run_folder`).
REQUIRED_FILES: tuple[str, ...] = (RUN_JSON, LEVELS_JSON, FEATURES_CSV, FEATURES_LONG_CSV)
#: Every file name of a run folder (for the check that nothing else spells them).
ALL_FILE_NAMES: tuple[str, ...] = (*RUN_FILES, SEGMENTATION_SUMMARY_JSON)


def qc_image(name: str) -> str:
    """The QC image of a level (or :data:`LEVEL_MAP_IMAGE`), relative to the run folder."""
    return f"{QC_DIR}/{name}.png"
