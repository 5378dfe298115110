"""What a batch processes: one :class:`Case` per scan.

Cases come from folders (DICOM discovery grouped by study and series, NIfTI/NRRD/MHA files),
a manifest CSV, or a DICOMweb query (:mod:`rcsa.pacs`). A case is plain, picklable data so that
it travels to local worker processes and to Dask workers unchanged.

Defined here, below both :mod:`rcsa.pacs` (whose queries return cases) and :mod:`rcsa.batch`
(which runs them), so that neither imports the other's layer upwards; :mod:`rcsa.batch.cases`
re-exports both names (see ``docs/architecture.md``, "Layers").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class RemoteSeries:
    """A series held by a DICOMweb server; retrieved to a local cache by :mod:`rcsa.pacs`.

    ``url`` is the DICOMweb service root (credentials are never part of it: they come from the
    environment or a config file when the series is retrieved).
    """

    url: str
    study_uid: str
    series_uid: str
    n_instances: int | None = None


@dataclass(frozen=True)
class Case:
    """One scan of a batch.

    ``case_id`` is unique within the batch and names the case's output folder. Exactly one of
    ``path`` (a local file or folder) and ``remote`` (a DICOMweb series) is set. ``series_uid``
    selects one series inside a local folder that holds several. ``levels`` are manual level
    overrides in ``rcsa levels`` syntax (``L3=slice:72``); ``clinical`` carries the manifest's
    extra columns unchanged into the feature table; ``height_m`` (patient height, metres) feeds
    the height-squared rCSA like ``rcsa run --height-m``.
    """

    case_id: str
    path: Path | None = None
    remote: RemoteSeries | None = None
    series_uid: str | None = None
    levels: tuple[str, ...] = ()
    clinical: Mapping[str, str] = field(default_factory=dict)
    height_m: float | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.remote is None):
            raise ValueError("a Case needs exactly one of path and remote")

    @property
    def source(self) -> str:
        """Human-readable origin, for progress lines and the run report."""
        if self.remote is not None:
            r = self.remote
            return f"{r.url} study {r.study_uid} series {r.series_uid}"
        assert self.path is not None
        return str(self.path) + (f" (series {self.series_uid})" if self.series_uid else "")
