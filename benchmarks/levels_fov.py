"""Field-of-view sweep of the level finder on real scans (evaluation, not a timing).

    .venv/bin/python benchmarks/levels_fov.py                 # A and D, table per window size
    .venv/bin/python benchmarks/levels_fov.py --per-window    # one row per window as well
    .venv/bin/python benchmarks/levels_fov.py --perturb       # whole scans, synthetic variation

Every window of 90, 120, 180 and 240 mm sliding by 15 mm over the scan (and the whole scan)
is cut out as its own volume (``CTVolume.slab``) and run through ``find_levels``. Each level
of each window is then

* **right**: found within one slice of its reference;
* **off**: found more than one slice from its reference, but still nearer to it than to any
  other level's reference (right name, imprecise slice);
* **wrong**: found outside the window, or nearer to another level's reference than to its
  own (a wrong name: the failure that must never happen);
* **ambiguous**: reported ambiguous (allowed anywhere);
* **missing, outside**: reported missing and its reference lies outside the window (right);
* **missing, inside**: reported missing although its reference lies inside the window
  (a cut vertebra whose mid-body cannot be estimated; counted, never hidden).

References. Subject A (``sample_data/ct_abdomen_pelvis``): from the TotalSegmentator labels,
the rules of ``tests/test_levels.py`` (vertebra = middle of the body's z extent; pelvic
levels from the femur / sacrum / hip labels). Subject D (``../shared/data/
ct_chest_pelvis_dicom``, unlabelled): the level found on the whole scan, checked by eye on the
sagittal QC image (``docs/levels_qc_subject_d.png``); a level missing on the whole scan is
outside every window.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from rcsa.io import CTVolume, load, load_labels
from rcsa.levels import LEVEL_NAMES, find_levels

REPO = Path(__file__).resolve().parents[1]
SUBJECT_A = REPO / "sample_data" / "ct_abdomen_pelvis"
SUBJECT_D = REPO.parent / "shared" / "data" / "ct_chest_pelvis_dicom" / "dicom"
WINDOWS_MM = (90.0, 120.0, 180.0, 240.0)
STEP_MM = 15.0
#: TotalSegmentator v2 label ids of the vertebrae (labels_ts_v2.json).
VERT_IDS = {"T12": 32, "L1": 31, "L2": 30, "L3": 29, "L4": 28, "L5": 27, "S1": 26}
OUTCOMES = ("right", "off", "wrong", "ambiguous", "missing, outside", "missing, inside")


def subject_a_references(ct: CTVolume, folder: Path = SUBJECT_A) -> dict[str, float]:
    """Reference slice index (float, may be x.5) of every level of subject A, from labels."""
    lab = load_labels(folder / "labels_ts_v2.nii.gz", like=ct).voxels
    body = load_labels(folder / "vertebral_body_parts.nii.gz", like=ct).voxels == 1
    out: dict[str, float] = {}
    for name, vid in VERT_IDS.items():
        ks = np.nonzero(((lab == vid) & body).any(axis=(1, 2)))[0]
        out[name] = (ks.min() + ks.max()) / 2.0
    out["L4_L5_disc"] = (np.nonzero(((lab == 28) & body).any(axis=(1, 2)))[0].min()
                         + np.nonzero(((lab == 27) & body).any(axis=(1, 2)))[0].max()) / 2.0
    femur = np.nonzero(np.isin(lab, [75, 76]).any(axis=(1, 2)))[0]
    out["femoral_head_top"] = float(femur.max() + 1)
    sac = np.isin(lab, [25, 26])
    hip = np.isin(lab, [77, 78])
    cross = ndi.generate_binary_structure(2, 1)
    touch = [k for k in range(lab.shape[0]) if (ndi.binary_dilation(sac[k], cross) & hip[k]).any()]
    out["sij_lower"] = float(min(touch))
    out["iliac_crest_top"] = float(np.nonzero(hip.any(axis=(1, 2)))[0].max())
    return out


def whole_scan_references(ct: CTVolume) -> dict[str, float | None]:
    """The levels found on the whole scan (None: not found there, so outside every window)."""
    lm = find_levels(ct)
    return {n: (float(lv.slice_index) if lv.found and lv.slice_index is not None else None)
            for n, lv in lm.levels.items()}


def windows(n_slices: int, slice_mm: float) -> list[tuple[float, int, int]]:
    """(window mm, first slice, last slice) of every window that fits, plus the whole scan."""
    out: list[tuple[float, int, int]] = []
    for w in WINDOWS_MM:
        n = round(w / slice_mm)
        step = max(1, round(STEP_MM / slice_mm))
        if n > n_slices:
            continue
        out += [(w, k0, k0 + n - 1) for k0 in range(0, n_slices - n + 1, step)]
    out.append((float("inf"), 0, n_slices - 1))
    return out


@dataclass
class Row:
    subject: str
    window_mm: float
    k0: int
    k1: int
    outcome: dict[str, str]
    detail: dict[str, str]


def _nearest(refs: dict[str, float | None], k: float) -> str:
    """The reference level (vertebrae and pelvic levels alike) nearest to slice ``k``."""
    known = {n: r for n, r in refs.items() if r is not None and n != "L4_L5_disc"}
    return min(known, key=lambda n: abs(known[n] - k))


def evaluate(name: str, ct: CTVolume, refs: dict[str, float | None], tol_slices: float,
             whole_only: bool = False) -> list[Row]:
    rows: list[Row] = []
    sz = float(ct.spacing_mm[2])
    wins = [(float("inf"), 0, ct.n_slices - 1)] if whole_only else windows(ct.n_slices, sz)
    for w, k0, k1 in wins:
        lm = find_levels(ct.slab(k0, k1))
        outcome: dict[str, str] = {}
        detail: dict[str, str] = {}
        for lv_name in LEVEL_NAMES:
            lv = lm[lv_name]
            ref = refs.get(lv_name)
            inside = ref is not None and k0 <= ref <= k1
            if lv.found and lv.slice_index is not None:
                k = lv.slice_index + k0
                ok = inside and ref is not None and abs(k - ref) <= tol_slices
                outcome[lv_name] = "right" if ok else (
                    "off" if inside and _nearest(refs, k) == lv_name else "wrong")
                detail[lv_name] = f"{k} (ref {ref})"
            elif lv.status == "ambiguous":
                outcome[lv_name] = "ambiguous"
            else:
                outcome[lv_name] = "missing, inside" if inside else "missing, outside"
                if inside:
                    detail[lv_name] = lv.reason
        rows.append(Row(name, w, k0, k1, outcome, detail))
    return rows


def summary(rows: list[Row]) -> list[tuple[str, str, int, dict[str, Counter[str]], int]]:
    out = []
    for subject in dict.fromkeys(r.subject for r in rows):
        for w in dict.fromkeys(r.window_mm for r in rows if r.subject == subject):
            sel = [r for r in rows if r.subject == subject and r.window_mm == w]
            per = {n: Counter(r.outcome[n] for r in sel) for n in LEVEL_NAMES}
            wrong = sum(c["wrong"] for c in per.values())
            label = "whole" if w == float("inf") else f"{w:.0f} mm"
            out.append((subject, label, len(sel), per, wrong))
    return out


def _cell(c: Counter[str]) -> str:
    return "/".join(str(c[o]) for o in ("right", "ambiguous", "missing, outside")) + (
        f" **{c['wrong']} wrong**" if c["wrong"] else "") + (
        f" ({c['off']} off by > 1 slice)" if c["off"] else "") + (
        f" ({c['missing, inside']} missing inside)" if c["missing, inside"] else "")


def print_tables(rows: list[Row], per_window: bool) -> None:
    summ = summary(rows)
    head = ["subject", "window", "n", *LEVEL_NAMES, "wrong names"]
    print("cells: found right / ambiguous / missing (outside the window); wrong and missing "
          "inside the window are named when they occur\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for subject, label, n, per, wrong in summ:
        print(f"| {subject} | {label} | {n} | "
              + " | ".join(_cell(per[x]) for x in LEVEL_NAMES) + f" | {wrong} |")
    total = sum(s[4] for s in summ)
    off = sum(c["off"] for s_ in summ for c in s_[3].values())
    print(f"\nwindows: {len(rows)}; wrong names in all windows: {total}; "
          f"right names more than one slice off: {off}")
    if per_window:
        print()
        for r in rows:
            bad = {k: v for k, v in r.outcome.items()
                   if v in ("wrong", "off", "missing, inside")}
            print(f"{r.subject} {r.window_mm:>5} k {r.k0:3d}-{r.k1:3d}: "
                  + " ".join(f"{k}={v[0]}" for k, v in r.outcome.items())
                  + (f"  !! {bad} {r.detail}" if bad else ""))


def perturbed(ct: CTVolume) -> dict[str, CTVolume]:
    """Synthetic variations of one scan (fixed seed): mirrored left-right, placed off-centre,
    Gaussian noise, bone density halved above 150 HU (osteopenia)."""
    from dataclasses import replace

    v = ct.voxels.astype(np.float32)
    rng = np.random.default_rng(15)
    out: dict[str, npt.NDArray[np.float32]] = {
        "mirrored": v[:, :, ::-1],
        "noise 40 HU": v + rng.normal(0.0, 40.0, v.shape).astype(np.float32),
        "noise 80 HU": v + rng.normal(0.0, 80.0, v.shape).astype(np.float32),
        "osteopenia": np.where(v > 150.0, 150.0 + 0.5 * (v - 150.0), v),
    }
    pad = np.full((v.shape[0], v.shape[1] + 40, v.shape[2] + 40), -1024.0, np.float32)
    pad[:, 40:, :-40] = v  # the body moved 40 voxels posterior and to the patient's right
    vols = {k: replace(ct, voxels=np.ascontiguousarray(a)) for k, a in out.items()}
    g = ct.geometry
    geo = type(g)((v.shape[2] + 40, v.shape[1] + 40, v.shape[0]), g.spacing_mm,
                  g.index_to_world([0.0, -40.0, 0.0]), g.direction)
    vols["off-centre"] = replace(ct, voxels=pad, geometry=geo)
    return vols


def run_perturbations() -> list[Row]:
    rows: list[Row] = []
    ct_a = load(SUBJECT_A / "ct.nii.gz")
    refs_a: dict[str, float | None] = dict(subject_a_references(ct_a))
    subjects = [("A", ct_a, refs_a, 1.5)]
    if SUBJECT_D.is_dir():
        ct_d = load(SUBJECT_D)
        subjects.append(("D", ct_d, whole_scan_references(ct_d), 1.0))
    for name, ct, refs, tol in subjects:
        for label, vol in perturbed(ct).items():
            rows += evaluate(f"{name} {label}", vol, refs, tol, whole_only=True)
    return rows


def run_sweep() -> list[Row]:
    rows: list[Row] = []
    ct_a = load(SUBJECT_A / "ct.nii.gz")
    refs_a: dict[str, float | None] = dict(subject_a_references(ct_a))
    # one slice (3 mm) for every level; the label references of vertebrae fall between
    # slices (x.5), so 1.5 slices = 4.5 mm is one slice either side of the nearest ones
    rows += evaluate("A", ct_a, refs_a, tol_slices=1.5)
    if SUBJECT_D.is_dir():
        ct_d = load(SUBJECT_D)
        rows += evaluate("D", ct_d, whole_scan_references(ct_d), tol_slices=1.0)
    else:
        print(f"subject D not found at {SUBJECT_D}: swept A only", file=sys.stderr)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-window", action="store_true", help="one line per window too")
    ap.add_argument("--perturb", action="store_true",
                    help="whole scans under synthetic variation instead of the sweep")
    args = ap.parse_args()
    rows = run_perturbations() if args.perturb else run_sweep()
    print_tables(rows, args.per_window)
    return 0 if all(v != "wrong" for r in rows for v in r.outcome.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
