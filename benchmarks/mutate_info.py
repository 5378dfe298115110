"""``rcsa info`` on byte-mutated copies of subject B's series, as a new user would run it
(issue 18): a real ``rcsa`` process per copy; counts loaded / refused / traceback / internal
error.

Run from the repository root::

    .venv/bin/python benchmarks/mutate_info.py              # 40 copies, seed 18
    .venv/bin/python benchmarks/mutate_info.py --copies 100 --seed 3

Each copy is the 20-file JPEG 2000 series with 1-3 files damaged by one of the families of
``tests/_mutate.py`` (random header bytes, truncation, a zeroed block, pixel-stream bytes).
"loaded": exit 0; "refused": exit 3/4 with rcsa's one-line ``error:``; "traceback": the text
"Traceback" anywhere in the output; "internal error": anything else. Exit 1 unless the last
two are 0.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from _mutate import mutated_series  # noqa: E402

SERIES = REPO / "sample_data" / "ct_thoracolumbar_dicom" / "dicom"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=40)
    ap.add_argument("--seed", type=int, default=18)
    args = ap.parse_args()
    files = sorted(SERIES.iterdir())
    rng = random.Random(args.seed)
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    counts: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="rcsa-mutate-") as tmp:
        for i in range(args.copies):
            case = Path(tmp) / f"copy{i:03d}"
            done = mutated_series(files, case, rng)
            p = subprocess.run([sys.executable, "-c", "from rcsa.cli import app; app()",
                                "info", str(case)], capture_output=True, text=True, env=env)
            text = p.stdout + p.stderr
            if "Traceback" in text:
                kind = "traceback"
            elif p.returncode == 0:
                kind = "loaded"
            elif p.returncode in (3, 4) and "error:" in p.stderr:
                kind = "refused"
            else:
                kind = "internal error"
            counts[kind] += 1
            if kind in ("traceback", "internal error"):
                print(f"{case.name} {done}: exit {p.returncode}\n{text[-1500:]}")
    print(f"{'copies':<16}{args.copies}")
    for k in ("loaded", "refused", "traceback", "internal error"):
        print(f"{k:<16}{counts[k]}")
    return 0 if counts["traceback"] == counts["internal error"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
