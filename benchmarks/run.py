"""Benchmark: ``rcsa run`` end to end versus a bare SimpleITK read of the same files.

Run from the repository root::

    .venv/bin/python benchmarks/run.py             # median of 3 fresh processes per reader
    .venv/bin/python benchmarks/run.py --repeat 5

Uses the 512 x 512 x 300 JPEG 2000 series that ``benchmarks/load.py`` builds (and caches) from
the real abdomen-pelvis sample. Each repetition runs in a fresh subprocess; the child times
only the work itself (after imports): for rcsa, ``run_scan`` (load -> levels -> segmentation of
every found level with the shipped model -> measurement) plus ``write_scan_outputs`` into a
temporary folder; for SimpleITK, ``ImageSeriesReader`` (GetGDCMSeriesFileNames + Execute +
GetArrayFromImage). Peak RSS is the child's ``VmHWM`` (includes interpreter and imports; for
rcsa that is torch + MONAI). Targets (issue 6): time ratio <= 1.5 (levels, segmentation and
measurement together cost less than half of decoding) and peak memory <= 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load as loadbench

TARGET_RATIO = 1.5
TARGET_RSS_MB = 2048.0


def child(folder: str) -> None:
    import rcsa.segment.infer  # noqa: F401  (torch + MONAI imports: untimed, like SimpleITK's)
    from rcsa.pipeline import run_scan, write_scan_outputs

    with tempfile.TemporaryDirectory(prefix="rcsa-run-bench-") as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        result = run_scan(folder)
        write_scan_outputs(result, Path(tmp) / "out")
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    found = sum(1 for lv in result.level_map.levels.values() if lv.found)
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu,
                      "peak_rss_mb": loadbench._peak_rss_mb(), "levels_found": found,
                      "stages": result.timings_s}))


def _run(cmd: list[str]) -> dict[str, object]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(loadbench.REPO / "src"), env.get("PYTHONPATH")]))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=loadbench.REPO)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"child failed: {' '.join(cmd)}")
    out: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    loadbench.build()
    folder = loadbench.CACHE_ROOT / loadbench.CACHE_VERSION / "jpeg2000"
    loadbench._warm_cache(folder)
    runs: dict[str, list[dict[str, object]]] = {"rcsa run": [], "SimpleITK": []}
    for rep in range(args.repeat):
        order = ("rcsa run", "SimpleITK") if rep % 2 == 0 else ("SimpleITK", "rcsa run")
        for reader in order:
            if reader == "rcsa run":
                cmd = [sys.executable, __file__, "--child", str(folder)]
            else:
                cmd = [sys.executable, loadbench.__file__, "--child", "SimpleITK", str(folder)]
            runs[reader].append(_run(cmd))
    med = {r: statistics.median(float(x["seconds"]) for x in v) for r, v in runs.items()}  # type: ignore[arg-type]
    rss = {r: max(float(x["peak_rss_mb"]) for x in v) for r, v in runs.items()}  # type: ignore[arg-type]
    ratio = med["rcsa run"] / med["SimpleITK"]
    print(f"{os.cpu_count()} CPU(s), 512 x 512 x 300 JPEG 2000 series, {args.repeat} runs each")
    print("  wall s: " + "; ".join(
        f"{r} " + " ".join(f"{float(x['seconds']):.2f}" for x in v) for r, v in runs.items()))
    print(f"  rcsa run stages (last run, s): {runs['rcsa run'][-1]['stages']}")
    print(f"  levels found: {runs['rcsa run'][-1]['levels_found']}")
    print()
    print(f"{'reader':<11}{'median s':>9}{'ratio':>16}{'peak RSS MB':>13}")
    ok_t = "ok" if ratio <= TARGET_RATIO else f"> {TARGET_RATIO}"
    ok_m = "ok" if rss["rcsa run"] <= TARGET_RSS_MB else f"> {TARGET_RSS_MB:.0f}"
    print(f"{'rcsa run':<11}{med['rcsa run']:>9.2f}{f'{ratio:.2f} {ok_t}':>16}"
          f"{rss['rcsa run']:>10.0f} {ok_m}")
    print(f"{'SimpleITK':<11}{med['SimpleITK']:>9.2f}{'':>16}{rss['SimpleITK']:>13.0f}")
    print(f"(targets: ratio rcsa run / SimpleITK read <= {TARGET_RATIO}, peak RSS <= "
          f"{TARGET_RSS_MB:.0f} MB; load average now {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
