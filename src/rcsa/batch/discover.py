"""Building the case list of a batch from folders, files and manifest CSVs.

* An image file (NIfTI, NRRD, MetaImage) is one case.
* A folder is searched recursively. Every NIfTI / NRRD / MHA file in it is a case, except a
  label volume with its label map beside it (``labels.nii.gz`` + ``labels.json``, the
  TotalSegmentator convention), which is ignored with that reason; DICOM files
  are grouped by StudyInstanceUID and SeriesInstanceUID, and every analysable axial CT image
  series becomes a case (its files' deepest common folder plus its ``series_uid``). A study
  without any analysable CT series (an MR study, a study of localizers only) becomes one case
  for its largest image series, which then fails with the loader's reason, so that it is listed
  in the run report rather than silently dropped. Objects without images (structured reports,
  SEG, presentation states) and files that are neither DICOM nor an image volume are not cases;
  they are listed as :class:`Ignored` with the reason.
* A ``.csv`` file is a manifest (:func:`read_manifest`).

Case ids from discovery are stable: they depend only on the input argument and the path of
the scan below it (``<input folder name>_<sub>_<folders>``, the image suffix dropped, a series
suffix ``_s<SeriesNumber>`` when one folder holds several cases), never on the other inputs.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rcsa.batch.cases import Case
from rcsa.errors import CaseIdError, InputNotFoundError, ManifestError, RcsaError
from rcsa.io import IMAGE_SUFFIXES, image_format

#: Manifest columns with a meaning; every other column is carried as clinical data.
MANIFEST_ID_COLUMNS = ("id", "case_id")
MANIFEST_RESERVED = ("id", "case_id", "path", "series_uid", "levels", "height_m")

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


@dataclass(frozen=True)
class Ignored:
    """An input that is not a case, and why (listed in ``run_report.json``)."""

    path: str
    reason: str


@dataclass(frozen=True)
class Discovery:
    """Cases found in the inputs and what was passed over."""

    cases: tuple[Case, ...]
    ignored: tuple[Ignored, ...] = ()


@dataclass
class _Series:
    study_uid: str
    series_uid: str
    files: list[Path] = field(default_factory=list)
    modality: str = ""
    sop_class: str = ""
    image_types: set[str] = field(default_factory=set)
    series_number: str = ""
    has_image: bool = False
    headers: list[Any] = field(default_factory=list)  # at most a few, for the analysable test


# ------------------------------------------------------------------------------------------
# case ids
# ------------------------------------------------------------------------------------------
def safe_case_id(text: str) -> str:
    """``text`` with every run of characters outside ``[A-Za-z0-9._+-]`` replaced by ``_``."""
    cleaned = _UNSAFE.sub("_", text).strip("_")
    return cleaned.lstrip(".") or "case"


def check_case_ids(cases: Sequence[Case]) -> None:
    """Refuse duplicated ids and ids that cannot name an output folder (:class:`CaseIdError`)."""
    seen: dict[str, list[str]] = defaultdict(list)
    for c in cases:
        cid = c.case_id
        if not cid or cid.strip() != cid or cid in (".", "..") or cid.startswith(".") or \
                any(ch in cid for ch in "/\\\0") or len(cid.encode()) > 200:
            raise CaseIdError(
                f"case id {cid!r} ({c.source}) cannot name an output folder: use letters, "
                "digits, '.', '_', '-', no leading dot, no path separators")
        seen[cid].append(c.source)
    dups = {k: v for k, v in seen.items() if len(v) > 1}
    if dups:
        shown = "; ".join(f"{k!r}: {', '.join(v)}" for k, v in sorted(dups.items())[:5])
        more = f" (and {len(dups) - 5} more)" if len(dups) > 5 else ""
        raise CaseIdError(
            f"{len(dups)} case id(s) used more than once: {shown}{more}; give each scan its own "
            "id (a manifest CSV with an id column names cases explicitly)")


def _strip_image_suffix(name: str) -> str:
    low = name.lower()
    for suffix in sorted(IMAGE_SUFFIXES, key=len, reverse=True):
        if low.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _id_below(root: Path, target: Path) -> str:
    """Id of ``target`` (a file or folder) found under the input folder ``root``."""
    root_name = root.resolve().name or "input"
    rel = target.relative_to(root)
    parts = [root_name, *rel.parts]
    if parts and target.is_file():
        parts[-1] = _strip_image_suffix(parts[-1])
    return safe_case_id("_".join(parts))


# ------------------------------------------------------------------------------------------
# DICOM grouping
# ------------------------------------------------------------------------------------------
def _looks_like_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM" or head[:2] in (b"\x08\x00", b"\x02\x00")


def _is_localizer(h: Any) -> bool:
    return "LOCALIZER" in h.image_type


def _common_folder(files: Sequence[Path]) -> Path:
    return Path(os.path.commonpath([str(f.parent) for f in files]))


def _why_not_analysable(s: _Series) -> str:
    """The loader's own judgement (``rcsa.io``), on the headers read during discovery."""
    from rcsa.io import why_not_analysable

    return why_not_analysable(s.headers)


def _dicom_cases(root: Path, files: Iterable[Path]) -> tuple[list[Case], list[Ignored]]:
    """Group DICOM files into series with the loader's own header reader
    (:func:`rcsa.io.read_dicom_file`) and series key, so a case's ``series_uid`` is the one
    the loader finds. A damaged file (truncated, unparseable header) is not a reason to lose
    its series: a damaged copy of an instance read intact elsewhere is listed as ignored and
    left out of the case; one that names a found series (and has no intact copy) is kept in
    that series' files, so the case's folder holds it and the case fails naming it, as a
    missing instance must; one without a readable identity is listed as ignored."""
    from rcsa.io import DamagedDicom, read_dicom_file

    series: dict[tuple[str, str], _Series] = {}
    ignored: list[Ignored] = []
    damaged: list[DamagedDicom] = []
    intact: dict[str, Path] = {}
    for f in files:
        try:
            h, bad = read_dicom_file(f)
        except RcsaError as exc:  # the operating system refuses the file
            ignored.append(Ignored(str(f), exc.reason))
            continue
        if bad is not None:
            damaged.append(bad)
            continue
        if h is None:
            ignored.append(Ignored(str(f), "not a DICOM file"))
            continue
        try:
            study = str(h.get("StudyInstanceUID", "") or "")
            uid = h.series_uid
            types = h.image_type
            s = series.setdefault((study, uid), _Series(study, uid))
            s.modality = s.modality or h.modality
            s.series_number = s.series_number or str(h.get("SeriesNumber", "") or "")
            s.sop_class = s.sop_class or h.sop_class
        except RcsaError as exc:  # checked by read_dicom_file; kept for safety
            ignored.append(Ignored(str(f), exc.reason))
            continue
        s.files.append(f)
        if h.sop_uid:
            intact.setdefault(h.sop_uid, f)
        s.image_types.update(types)
        if "Rows" in h.ds and "Columns" in h.ds:
            s.has_image = True
            # a sample for the analysable test: a few localizer and a few other images
            localizer = _is_localizer(h)
            if sum(1 for x in s.headers if _is_localizer(x) == localizer) < 4:
                s.headers.append(h)
    by_uid: dict[str, list[_Series]] = defaultdict(list)
    for s in series.values():
        by_uid[s.series_uid].append(s)
    for d in damaged:
        twin = intact.get(d.sop_uid or "")
        owners = by_uid.get(d.series_uid or "", [])
        if twin is not None:
            ignored.append(Ignored(str(d.path), f"damaged DICOM file ({d.reason}); a copy of "
                                   f"the same instance, read intact from {twin}, is used"))
        elif len(owners) == 1:
            owners[0].files.append(d.path)  # the case fails naming it (a lost instance)
        else:
            ignored.append(Ignored(str(d.path), f"damaged DICOM file ({d.reason}); not "
                                   "identifiable as an instance of any series found"))

    by_study: dict[str, list[_Series]] = defaultdict(list)
    for s in series.values():
        by_study[s.study_uid].append(s)

    chosen: list[_Series] = []
    for _study, group in sorted(by_study.items()):
        images = [s for s in group if s.has_image]
        for s in group:
            if not s.has_image:
                ignored.append(Ignored(
                    str(_common_folder(s.files)),
                    f"series {s.series_uid} ({s.modality or '?'}, {len(s.files)} file(s)) "
                    "holds no images"))
        ct = [s for s in images if not _why_not_analysable(s)]
        if ct:
            chosen.extend(ct)
            for s in images:
                if s not in ct:
                    ignored.append(Ignored(
                        str(_common_folder(s.files)),
                        f"series {s.series_uid} ({s.modality or '?'}, {len(s.files)} file(s)) "
                        f"not analysed: {_why_not_analysable(s)}"))
        elif images:
            # no CT in this study: one case that fails with the loader's reason
            chosen.append(max(images, key=lambda s: (len(s.files), s.series_uid)))

    by_folder: dict[Path, list[_Series]] = defaultdict(list)
    for s in chosen:
        by_folder[_common_folder(s.files)].append(s)
    cases: list[Case] = []
    for folder, group in sorted(by_folder.items()):
        base = _id_below(root, folder) if root.is_dir() else safe_case_id(
            _strip_image_suffix(folder.name))
        numbers = [s.series_number for s in group]
        unique_numbers = all(numbers) and len(set(numbers)) == len(numbers)
        for s in sorted(group, key=lambda s: (s.series_number.zfill(8), s.series_uid)):
            cid = base
            if len(group) > 1:
                tag = (f"s{s.series_number}" if unique_numbers else
                       hashlib.sha1(f"{s.study_uid}/{s.series_uid}".encode()).hexdigest()[:8])
                cid = safe_case_id(f"{base}_{tag}")
            cases.append(Case(cid, path=folder, series_uid=s.series_uid))
    return cases, ignored


# ------------------------------------------------------------------------------------------
# inputs
# ------------------------------------------------------------------------------------------
def _walk(folder: Path) -> list[Path]:
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files.extend(Path(dirpath) / n for n in sorted(filenames) if not n.startswith("."))
    return files


def discover_folder(folder: Path) -> Discovery:
    """Cases in one folder tree (see the module docstring)."""
    cases: list[Case] = []
    ignored: list[Ignored] = []
    dicom: list[Path] = []
    for f in _walk(folder):
        if image_format(f) is not None:
            label_map = f.with_name(_strip_image_suffix(f.name) + ".json")
            if label_map.is_file():  # the TotalSegmentator convention: labels.nii.gz + .json
                ignored.append(Ignored(str(f), f"a label volume (its label map {label_map.name} "
                                               "lies beside it), not a CT"))
                continue
            cases.append(Case(_id_below(folder, f), path=f))
        elif f.name.upper() == "DICOMDIR":
            continue
        elif _looks_like_dicom(f):
            dicom.append(f)
        else:
            ignored.append(Ignored(str(f), "neither DICOM nor a NIfTI / NRRD / MHA volume"))
    if dicom:
        found, skipped = _dicom_cases(folder, dicom)
        cases.extend(found)
        ignored.extend(skipped)
    return Discovery(tuple(sorted(cases, key=lambda c: c.case_id)), tuple(ignored))


def discover(inputs: Sequence[str | Path]) -> Discovery:
    """Cases of every input: folders (recursive), image or DICOM files, manifest ``.csv``.

    A missing input raises :class:`~rcsa.errors.InputNotFoundError` (nothing has run yet);
    duplicated case ids raise :class:`~rcsa.errors.CaseIdError`."""
    cases: list[Case] = []
    ignored: list[Ignored] = []
    for item in inputs:
        p = Path(item)
        if not p.exists():
            raise InputNotFoundError("no such file or folder", p)
        if p.is_dir():
            d = discover_folder(p)
        elif p.suffix.lower() == ".csv":
            d = Discovery(tuple(read_manifest(p)))
        elif image_format(p) is not None or _looks_like_dicom(p):
            d = Discovery((Case(safe_case_id(_strip_image_suffix(p.name)), path=p),))
        else:
            d = Discovery((), (Ignored(str(p), "neither DICOM, an image volume nor a .csv "
                                               "manifest"),))
        cases.extend(d.cases)
        ignored.extend(d.ignored)
    check_case_ids(cases)
    return Discovery(tuple(cases), tuple(ignored))


def read_manifest(path: str | Path) -> list[Case]:
    """Cases of a manifest CSV (UTF-8, header row).

    Columns: ``id`` (or ``case_id``) and ``path`` are required; ``path`` relative to the
    manifest's folder. Optional: ``series_uid``, ``levels`` (manual levels in ``--level``
    syntax, several separated by ``;``), ``height_m``. Every other column is clinical data,
    carried unchanged into the feature table. A path that does not exist is not an error here:
    that case fails with the reason when the batch runs, and the others go on.

    Raises :class:`~rcsa.errors.ManifestError` for a missing column, an empty id or an
    unusable height (naming the row), :class:`~rcsa.errors.CaseIdError` for duplicated ids.
    """
    p = Path(path)
    try:
        with open(p, newline="", encoding="utf-8-sig") as fh:
            table = [(n, row) for n, row in enumerate(csv.reader(fh), start=1)
                     if any(v.strip() for v in row)]
    except FileNotFoundError:
        raise InputNotFoundError("no such file", p) from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ManifestError(f"cannot read the manifest ({exc})", p) from None
    header = [h.strip() for h in table[0][1]] if table else []
    id_col = next((c for c in MANIFEST_ID_COLUMNS if c in header), None)
    missing = [name for name, ok in (("id", id_col is not None), ("path", "path" in header))
               if not ok]
    if missing:
        raise ManifestError(
            f"missing column(s) {', '.join(missing)} (found: {', '.join(header) or 'none'}); "
            "a manifest needs id and path", p)
    assert id_col is not None
    if "" in header or len(set(header)) != len(header):
        raise ManifestError("the header row has an empty or repeated column name", p)
    rows: list[tuple[int, dict[str, str]]] = []
    for n, values in table[1:]:
        if len(values) != len(header):
            raise ManifestError(f"row {n}: {len(values)} value(s) for {len(header)} column(s)", p)
        rows.append((n, dict(zip(header, values, strict=True))))
    clinical_cols = [c for c in header if c not in MANIFEST_RESERVED]
    cases: list[Case] = []
    for n, row in rows:  # n: the line number in the file (1 = header)
        cid = row[id_col].strip()
        scan = row["path"].strip()
        if not cid:
            raise ManifestError(f"row {n}: empty {id_col}", p)
        if not scan:
            raise ManifestError(f"row {n} ({cid}): empty path", p)
        scan_path = Path(scan).expanduser()
        if not scan_path.is_absolute():
            scan_path = p.parent / scan_path
        height: float | None = None
        text = row.get("height_m", "").strip()
        if text:
            try:
                height = float(text)
            except ValueError:
                raise ManifestError(f"row {n} ({cid}): height_m {text!r} is not a number",
                                    p) from None
            if not 0.5 <= height <= 2.8:
                raise ManifestError(f"row {n} ({cid}): height_m {height} is not a height in "
                                    "metres (0.5-2.8)", p)
        levels = tuple(s.strip() for s in row.get("levels", "").split(";") if s.strip())
        cases.append(Case(
            cid, path=scan_path, series_uid=row.get("series_uid", "").strip() or None,
            levels=levels, clinical={c: row[c] for c in clinical_cols}, height_m=height))
    try:
        check_case_ids(cases)
    except CaseIdError as exc:
        raise CaseIdError(exc.reason, p) from None
    return cases
