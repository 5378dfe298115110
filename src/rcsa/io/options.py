"""How a scan is loaded: :class:`LoadOptions`, the loader's settings as one frozen value.

The command line builds one from ``--series-uid``, ``--no-tilt-correction`` and
``--resample-irregular`` (``rcsa.cli_options.load_options``); it travels unchanged through
``rcsa.pipeline``, ``rcsa.report`` and the batch workers (it pickles) to :func:`rcsa.io.load`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoadOptions:
    """Settings of :func:`rcsa.io.load` (see ``docs/io.md``).

    ``series_uid``: analyse this DICOM series instead of the automatic choice.
    ``correct_tilt``: resample a gantry-tilted series (``False``: refuse it).
    ``resample_irregular``: interpolate over missing slices / non-uniform spacing instead of
    refusing the series.
    """

    series_uid: str | None = None
    correct_tilt: bool = True
    resample_irregular: bool = False
