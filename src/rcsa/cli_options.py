"""The command-line options that more than one command takes, declared once.

Every sub-CLI (``rcsa.cli``, ``rcsa.segment.cli``, ``rcsa.report.cli``, ``rcsa.batch.cli``,
``rcsa.pacs.cli``, ``rcsa.nomogram.cli``) takes these ``Annotated`` types for its parameters,
so an option has one spelling, one help text and one default everywhere, and turns them into
the library's typed options with :func:`load_options`. A new shared option goes here (and in
``docs/cli.md``, "Shared options"). This module sits low in the import layers (only
``rcsa.io`` below it) so that ``rcsa.nomogram`` and ``rcsa.segment`` can import it; Typer is
its only other import.

Also here: :data:`Fail`, the type of the ``fail`` function that the main app hands to every
sub-CLI's ``register`` (it prints the one-line error and picks the exit code,
``rcsa.cli.EXIT_CODES``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # rcsa.io is imported when a command runs, not for `rcsa --help`
    from rcsa.io.options import LoadOptions

#: ``fail(exc)`` prints one line (the traceback with ``--debug``) and returns the ``typer.Exit``
#: carrying the exit code for ``exc``; every command does ``raise fail(exc) from None``.
Fail = Callable[[BaseException], typer.Exit]

# ----------------------------------------------------------------------------- the scan
ScanArg = Annotated[
    Path,
    # readable=False: the loader reports unreadable input (exit 3), not a usage error (2)
    typer.Argument(help="DICOM folder or file, or a NIfTI / NRRD / MHA file.", readable=False),
]
SeriesUidOpt = Annotated[
    str | None,
    typer.Option(
        "--series-uid",
        help="Analyse this DICOM SeriesInstanceUID instead of the automatic choice.",
    ),
]
NoTiltOpt = Annotated[
    bool,
    typer.Option(
        "--no-tilt-correction", help="Refuse gantry-tilted series instead of resampling them."
    ),
]
IrregularOpt = Annotated[
    bool,
    typer.Option(
        "--resample-irregular",
        help="Interpolate over missing slices / non-uniform spacing instead of refusing.",
    ),
]


def load_options(
    series_uid: str | None = None, no_tilt_correction: bool = False,
    resample_irregular: bool = False,
) -> LoadOptions:
    """The loader options of :data:`SeriesUidOpt`, :data:`NoTiltOpt` and :data:`IrregularOpt`."""
    from rcsa.io.options import LoadOptions

    return LoadOptions(series_uid=series_uid, correct_tilt=not no_tilt_correction,
                       resample_irregular=resample_irregular)


# ----------------------------------------------------------------------------- levels
#: one syntax for every command (parsed by :func:`rcsa.levels.override.parse_level_specs`)
LEVEL_SPEC_HELP = (
    "Level spec, repeatable or comma-separated: NAME=slice:K, NAME=K (slice index), "
    "NAME=z:MM (LPS z), or a bare NAME to restrict the levels segmented / measured "
    "(e.g. L3=slice:72, or L3=72,L4=62, or L3,L4)."
)
LevelOpt = Annotated[list[str] | None, typer.Option("--level", help=LEVEL_SPEC_HELP)]
#: ``rcsa segment``'s spelling (``--levels L3=72,L4=62``) of the same option; ``--level`` works
#: there too
SegmentLevelsOpt = Annotated[
    list[str] | None, typer.Option("--levels", "--level", help=LEVEL_SPEC_HELP)
]
LevelsFileOpt = Annotated[
    Path | None,
    typer.Option("--levels-file", help="JSON file of manual levels (see docs/levels.md)."),
]

# ----------------------------------------------------------------------------- run options
HeightOpt = Annotated[
    float | None, typer.Option("--height-m", help="Patient height in metres (height^2 rCSA).")
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="TOML configuration (default: packaged).")
]
#: test-time augmentation: the same default (off) for run, batch, screen and segment
TtaOpt = Annotated[
    bool, typer.Option("--tta/--no-tta", help="Add a left-right mirrored pass (slower).")
]
#: the segmentation model of run, measure (vertebral body fallback), batch and screen
SegModelOpt = Annotated[
    Path | None,
    typer.Option("--seg-model",
                 help="metadata.json of the segmentation model (default: the shipped one), "
                      "e.g. src/rcsa/models/previous/v0.3/metadata.json to pin a study's "
                      "model."),
]
AllLevelsOpt = Annotated[
    bool,
    typer.Option("--all-levels",
                 help="Segment every found level (T12-S1 and pelvic), not only the levels "
                      "the feature table measures."),
]

# ----------------------------------------------------------------------------- outputs
OutDirOpt = Annotated[Path, typer.Option("--out", help="Output folder (see docs/measure.md).")]
OverwriteDirOpt = Annotated[
    bool, typer.Option("--overwrite", help="Replace a non-empty output folder.")
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")]

# ----------------------------------------------------------------------------- nomogram
NomogramModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Spec file (.json/.yaml) or built-in name "
        "(demo-rbp-simulated, rbp-augmentation-structure).",
    ),
]

# ----------------------------------------------------------------------------- global
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logging.")]
LogFileOpt = Annotated[
    Path | None,
    typer.Option("--log-file", help="Append every log record (rcsa's and the libraries', "
                 "with tracebacks) to this file."),
]

# ----------------------------------------------------------------------------- DICOMweb
PacsConfigOpt = Annotated[
    Path | None,
    typer.Option("--pacs-config",
                 help="PACS config file (TOML: url, username, password or token, timeout_s, "
                      "verify_tls, ca_bundle); default RCSA_PACS_CONFIG or "
                      "~/.config/rcsa/pacs.toml."),
]
# Study / series filters of a DICOMweb query: `rcsa pacs query` and `rcsa batch` share them.
QUERY_PANEL = "DICOMweb query"
DateOpt = Annotated[
    str | None,
    typer.Option("--date", help="Study date or range: 2024-03-01, 2024-01-01..2024-03-31, "
                                "2024-01-01.., ..2024-03-31.", rich_help_panel=QUERY_PANEL),
]
ModalityOpt = Annotated[
    str, typer.Option("--modality", help="Modality ('' for any).", rich_help_panel=QUERY_PANEL)
]
BodyPartOpt = Annotated[
    str | None,
    typer.Option("--body-part", help="BodyPartExamined (wildcards * ?).",
                 rich_help_panel=QUERY_PANEL),
]
PatientIdOpt = Annotated[
    str | None,
    typer.Option("--patient-id", help="PatientID (wildcards * ?).", rich_help_panel=QUERY_PANEL),
]
StudyUidOpt = Annotated[
    str | None,
    typer.Option("--study-uid", help="StudyInstanceUID.", rich_help_panel=QUERY_PANEL),
]
