"""QC sheet of subject D (unlabelled chest-pelvis CT, 3 mm pixels) at L1-L5, read by eye.

    .venv/bin/python benchmarks/segment_subject_d_qc.py [--model META] \\
        [--out docs/segment_qc_subject_d.png]

Levels from rcsa's own level finder; each panel is the QC overlay ``rcsa segment`` writes
(flags and needs-review lines under the image), side by side.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
D = Path("/work/shared/data/ct_chest_pelvis_dicom/dicom")
if not D.is_dir():
    D = REPO.parent / "shared" / "data" / "ct_chest_pelvis_dicom" / "dicom"
LEVELS = ("L1", "L2", "L3", "L4", "L5")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--scan", type=Path, default=D)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "segment_qc_subject_d.png")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    from rcsa.io import load
    from rcsa.levels import find_levels
    from rcsa.runfolder.qc import side_by_side
    from rcsa.segment import load_model, segment
    from rcsa.segment.infer import write_outputs

    ct = load(a.scan)
    lm = find_levels(ct)
    res = segment(ct, lm, names=list(LEVELS), model=load_model(a.model), tta=True)
    with tempfile.TemporaryDirectory() as tmp:
        summary = write_outputs(res, ct, tmp)
        sheet = side_by_side([Image.open(p).convert("RGB") for p in summary["qc"]])
        a.out.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(a.out)
    for lv in res:
        print(lv.level, lv.slice_index, {k: round(v) for k, v in lv.areas_mm2().items() if v},
              "needs review:", list(lv.needs_review))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
