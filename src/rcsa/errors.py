"""Typed errors raised by the rcsa library.

Every error that a user can cause carries the offending ``path`` (when there is one) and a
human-readable ``reason``; ``str(error)`` is a single line naming both. Only :mod:`rcsa.cli`
turns them into messages and exit codes (``rcsa.cli.EXIT_CODES``, see ``docs/cli.md``): every
class here has its own documented code, and exit code 1 is left for bugs (an exception that is
not an :class:`RcsaError`). A new class needs a row in ``EXIT_CODES`` (a test walks them all).

Hierarchy::

    RcsaError
    ├── InputError                       the input cannot be used as given
    │   ├── InputNotFoundError           path does not exist
    │   ├── InputNotReadableError        permissions / OS refuses to read
    │   ├── EmptyInputError              folder with no files
    │   ├── UnsupportedFormatError       not DICOM / NIfTI / NRRD / MHA / TAG
    │   ├── CorruptFileError             truncated or undecodable file
    │   ├── DicomError                   DICOM-specific refusal
    │   │   ├── NoDicomFoundError        files present, none is DICOM
    │   │   ├── NotCTError               no CT image series (MR, SEG, SR, ...)
    │   │   ├── UnsupportedImageError    RGB / secondary capture / localizer only / multi-frame
    │   │   ├── MissingPixelDataError    an image without pixel data
    │   │   ├── InconsistentSeriesError  mixed orientation, size or spacing within a series
    │   │   ├── DuplicateSliceError      two different images at one position
    │   │   ├── SliceSpacingError        missing slices (gap) or non-uniform spacing
    │   │   ├── GantryTiltError          tilted acquisition when correction is disabled
    │   │   └── SeriesNotFoundError      --series-uid names no series in the input
    │   ├── ModelSpecError               nomogram model spec invalid (schema, values)
    │   ├── DataError                    data table unusable (missing column, one class, ...)
    │   ├── ScoringError                 a patient cannot be scored (missing predictor, ...)
    │   ├── ManifestError                batch manifest CSV unusable (missing column, bad row)
    │   ├── CaseIdError                  batch case ids duplicated or not usable as folder names
    │   ├── LevelOverrideError           --level / --levels / levels file malformed, or outside
    │   │                                the scan
    │   ├── ConfigError                  --config file missing, not TOML, or invalid values
    │   └── DicomExportError             an rcsa run cannot be written as DICOM SEG / SR
    │       └── EmptySegmentationError   no rcsa class on any level slice: nothing to export
    ├── GeometryError                    two volumes that should share a grid do not
    ├── OutputExistsError                output exists and --overwrite was not given
    ├── ModelError                       segmentation model unusable (missing, invalid)
    │   └── ModelChecksumError           weights do not match the sha256 in metadata.json
    ├── LevelError                       level detection cannot run on this input
    ├── OutputWriteError                 an output cannot be written (permissions, disk full)
    ├── NothingMeasuredError             rcsa run / measure found no level and measured nothing
    │                                    (a single slice needs --level L3=slice:0)
    ├── ReportError                      a screening report cannot be made (PDF engine missing)
    ├── BatchError                       a batch cannot run in its output folder (in use by
    │                                    another run, state store unreadable)
    └── PacsError                        DICOMweb / PACS (rcsa.pacs); names the server URL
        ├── PacsConfigError              no server URL, bad pacs.toml, credentials in the URL
        ├── PacsQueryError               query parameters unusable (bad date range, ...)
        ├── PacsConnectionError          server unreachable (refused, DNS, timeout, TLS)
        └── PacsServerError              server answered with an error (401, 404, 5xx, ...)
                                         or stored / returned fewer instances than expected
"""

from __future__ import annotations

from pathlib import Path


class RcsaError(Exception):
    """Base class of every error rcsa raises on purpose."""

    def __init__(self, reason: str, path: str | Path | None = None) -> None:
        self.reason = reason
        self.path = Path(path) if path is not None else None
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """One line: ``<path>: <reason>`` (or just the reason without a path)."""
        if self.path is None:
            return self.reason
        return f"{self.path}: {self.reason}"


class InputError(RcsaError):
    """The input cannot be used as given."""


class InputNotFoundError(InputError):
    """The path does not exist."""


class InputNotReadableError(InputError):
    """The operating system refuses to read the path (permissions, I/O error)."""


class EmptyInputError(InputError):
    """A folder (or file list) that contains no files."""


class UnsupportedFormatError(InputError):
    """A file that is none of the supported formats."""


class CorruptFileError(InputError):
    """A file of a supported format that cannot be parsed or decoded (e.g. truncated)."""


class DicomError(InputError):
    """A DICOM input that rcsa refuses, with the reason."""


class NoDicomFoundError(DicomError):
    """Files were found, but none of them is DICOM."""


class NotCTError(DicomError):
    """DICOM files were found, but no CT image series among them."""


class UnsupportedImageError(DicomError):
    """A CT object rcsa cannot analyse (RGB, secondary capture, localizer only, ...)."""


class MissingPixelDataError(DicomError):
    """An image object without pixel data."""


class InconsistentSeriesError(DicomError):
    """Images of one series disagree in orientation, size or pixel spacing."""


class DuplicateSliceError(DicomError):
    """Two different images claim the same slice position."""


class SliceSpacingError(DicomError):
    """Missing slices (a gap) or non-uniform slice spacing."""


class GantryTiltError(DicomError):
    """A gantry-tilted acquisition while tilt correction is disabled."""


class SeriesNotFoundError(DicomError):
    """The requested SeriesInstanceUID is not in the input."""


class GeometryError(RcsaError):
    """Two volumes that must share one grid do not (shape, spacing, origin or direction)."""


class ModelSpecError(InputError):
    """A nomogram model spec that is not valid (schema violation, unknown field, bad value)."""


class DataError(InputError):
    """A data table that cannot be used as given (missing column, wrong type, single class, ...)."""


class ScoringError(InputError):
    """A patient that cannot be scored with a model (missing predictor, unusable value, ...)."""


class OutputExistsError(RcsaError):
    """An output path already exists and overwriting was not requested (``--overwrite``)."""


class ModelError(RcsaError):
    """A segmentation model that cannot be used (missing file, invalid metadata)."""


class ModelChecksumError(ModelError):
    """The model weights do not match the sha256 recorded in the model's metadata.json."""


class LevelError(RcsaError):
    """Level detection cannot run on this input (see :mod:`rcsa.levels`)."""


class LevelOverrideError(InputError):
    """A manual level spec (``--level`` / ``--levels``, levels file) is malformed or outside
    the scan."""


class ConfigError(InputError):
    """A configuration file (``--config``) is missing, not TOML, or holds invalid values."""


class OutputWriteError(RcsaError):
    """An output file or folder cannot be written (permission denied, disk full, ...)."""


class NothingMeasuredError(RcsaError):
    """``rcsa run`` / ``rcsa measure`` measured nothing at all: no level was found or given (a
    single axial slice cannot be placed automatically: ``--level L3=slice:0``), or no structure
    on the levels found. Nothing is written."""


class ReportError(RcsaError):
    """A screening report cannot be made: the PDF engine (WeasyPrint / Pango) is missing or
    failed (``rcsa screen --no-pdf`` writes HTML and JSON only)."""


class ManifestError(InputError):
    """A batch manifest CSV that cannot be used (missing column, unusable value; names the row)."""


class CaseIdError(InputError):
    """Batch case ids that are duplicated, empty or not usable as an output folder name."""


class BatchError(RcsaError):
    """A batch cannot run in its output folder (another run holds it, state store unreadable)."""


class DicomExportError(InputError):
    """An ``rcsa run`` folder that cannot be written as DICOM SEG / SR (source series missing,
    no UIDs, segmentation grid not matching the source instances)."""


class EmptySegmentationError(DicomExportError):
    """No rcsa class on any level slice: a SEG without segments is never written or pushed."""


class PacsError(RcsaError):
    """A DICOMweb / PACS problem. ``url`` is the server (never with credentials); ``str(error)``
    is ``<url>: <reason>``."""

    def __init__(self, reason: str, url: str | None = None) -> None:
        self.url = url
        super().__init__(reason)

    @property
    def message(self) -> str:
        return f"{self.url}: {self.reason}" if self.url else self.reason


class PacsConfigError(PacsError):
    """No server URL, an unreadable or malformed ``pacs.toml``, or credentials in the URL."""


class PacsQueryError(PacsError):
    """Query parameters that cannot be used (malformed date or date range, ...)."""


class PacsConnectionError(PacsError):
    """The DICOMweb server cannot be reached (connection refused, DNS, timeout, TLS)."""


class PacsServerError(PacsError):
    """The server answered with an error status or a response rcsa cannot use."""
