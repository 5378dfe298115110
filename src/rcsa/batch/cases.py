"""What a batch processes: one :class:`Case` per scan.

The types are defined in :mod:`rcsa.cases` (below :mod:`rcsa.pacs`, which builds cases from a
DICOMweb query) and re-exported here unchanged.
"""

from __future__ import annotations

from rcsa.cases import Case, RemoteSeries

__all__ = ["Case", "RemoteSeries"]
