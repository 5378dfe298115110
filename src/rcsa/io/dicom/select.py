"""Grouping headers into series and choosing the axial CT series to analyse."""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import numpy as np
import numpy.typing as npt

from rcsa.errors import (
    NotCTError,
    SeriesNotFoundError,
    UnsupportedImageError,
)
from rcsa.io.dicom.header import (
    AXIAL_MAX_ANGLE_DEG,
    CT_IMAGE_STORAGE,
    ENHANCED_CT_IMAGE_STORAGE,
    SECONDARY_CAPTURE_PREFIX,
    _Header,
)
from rcsa.io.volume import SeriesSummary

log = logging.getLogger(__name__)


def _normal(iop: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    n = np.cross(iop[:3], iop[3:])
    return n / np.linalg.norm(n)


def why_not_analysable(hs: list[_Header]) -> str:
    """Empty string when the series is an analysable axial CT series, else the reason."""
    # judge the series by a CT image, not by whichever file sorts first: a dose screenshot or
    # a localizer filed under the same SeriesInstanceUID is dropped later (load_dicom)
    h = next(
        (x for x in hs if x.sop_class == CT_IMAGE_STORAGE and "LOCALIZER" not in x.image_type),
        hs[0],
    )
    sop = h.sop_class
    if h.modality != "CT":
        return f"modality {h.modality}, not CT"
    if sop.startswith(SECONDARY_CAPTURE_PREFIX):
        return "secondary capture (screenshot), not a CT image"
    if sop == ENHANCED_CT_IMAGE_STORAGE or int(h.get("NumberOfFrames", 1) or 1) > 1:
        return "multi-frame (Enhanced CT) images are not supported; export as single-frame CT"
    if sop != CT_IMAGE_STORAGE:
        return f"SOP class {sop or '(missing)'} is not CT Image Storage"
    if all("LOCALIZER" in x.image_type for x in hs):
        return "localizer (scout) images"
    spp = int(h.get("SamplesPerPixel", 1) or 1)
    photometric = str(h.get("PhotometricInterpretation", "MONOCHROME2"))
    if spp != 1 or not photometric.startswith("MONOCHROME"):
        return f"colour image ({photometric}, {spp} samples per pixel), not CT greyscale"
    iop = h.orientation
    if iop is None:
        return "no ImageOrientationPatient"
    angle = float(np.degrees(np.arccos(min(1.0, abs(_normal(iop)[2])))))
    if angle > AXIAL_MAX_ANGLE_DEG:
        return f"not axial (slice normal {angle:.0f} deg from the patient's long axis)"
    return ""


def _describe(hs: list[_Header]) -> str:
    return str(hs[0].get("SeriesDescription", "") or "")


def choose_series(
    headers: list[_Header], series_uid: str | None, where: Path
) -> tuple[list[_Header], tuple[SeriesSummary, ...]]:
    """Pick the series to analyse; return its headers and a summary of every series."""
    groups: dict[str, list[_Header]] = defaultdict(list)
    for h in headers:
        groups[h.series_uid].append(h)

    reasons = {uid: why_not_analysable(hs) for uid, hs in groups.items()}
    if series_uid is not None:
        if series_uid not in groups:
            raise SeriesNotFoundError(
                f"series {series_uid} not found among {len(groups)} series in the input", where
            )
        chosen = series_uid
        if reasons[chosen]:
            cls = NotCTError if groups[chosen][0].modality != "CT" else UnsupportedImageError
            raise cls(f"requested series cannot be analysed: {reasons[chosen]}", where)
    else:
        candidates = [uid for uid, r in reasons.items() if not r]
        if not candidates:
            kinds = sorted({r for r in reasons.values()})
            if all(hs[0].modality != "CT" for hs in groups.values()):
                modalities = sorted({hs[0].modality for hs in groups.values()})
                raise NotCTError(
                    f"no CT series in the input (found modality {', '.join(modalities)})", where
                )
            raise UnsupportedImageError(
                "no analysable axial CT series: " + "; ".join(kinds), where
            )

        def rank(uid: str) -> tuple[int, float, str]:
            hs = groups[uid]
            thickness = float(hs[0].get("SliceThickness", 0) or 0)
            return (-len(hs), thickness, uid)

        chosen = min(candidates, key=rank)

    summaries = []
    for uid, hs in sorted(groups.items(), key=lambda kv: (kv[0] != chosen, kv[0])):
        if uid == chosen:
            why = "chosen" + (" (--series-uid)" if series_uid else ": axial CT with most slices")
        else:
            why = reasons[uid] or f"fewer slices than the chosen series ({len(hs)})"
        summaries.append(
            SeriesSummary(uid, hs[0].modality, len(hs), _describe(hs), uid == chosen, why)
        )
    return groups[chosen], tuple(summaries)


