"""Simulation recovery study of ``rcsa nomogram fit`` (the full version of the test).

For each seed: simulate the documented 428-patient cohort (``rcsa.nomogram.simulate``, known
coefficients), run the whole fit (LASSO 10-fold CV at lambda.1se -> statsmodels refit), and
record which predictors were selected and whether each true coefficient's 95 % Wald CI covers
the truth. Also: coverage of the multivariable CIs when the true predictor set is given (no
selection), over more seeds.

    python benchmarks/nomogram_recovery.py --seeds 200            # about 1-2 s per seed
    python benchmarks/nomogram_recovery.py --seeds 200 --json out.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from rcsa.nomogram import simulate as sim
from rcsa.nomogram.design import design_matrix
from rcsa.nomogram.fit import fit, infer_predictor, logit_fit


def one_seed(seed: int, folder: Path) -> dict[str, Any]:
    df = sim.simulate_cohort(seed=seed)
    path = folder / f"cohort_{seed}.csv"
    df.to_csv(path, index=False)
    res = fit(path, sim.OUTCOME, None, seed=seed, n_bootstrap=0)
    rows = {r["term"]: r for r in res.table}
    covered = {}
    for name in sim.TRUE_PREDICTORS:
        if name in rows:
            lo, hi = rows[name]["coefficient_ci95"]
            covered[name] = bool(lo <= sim.TRUE_COEFFICIENTS[name] <= hi)
    return {
        "seed": seed,
        "events": int(df[sim.OUTCOME].sum()),
        "selected": [p["name"] for p in res.spec["predictors"]],
        "covered": covered,
        "auc_train": res.auc_train,
    }


def fixed_set_coverage(seeds: range) -> dict[str, float]:
    hits = {name: 0 for name in sim.TRUE_PREDICTORS}
    for seed in seeds:
        df = sim.simulate_cohort(seed=seed)
        preds = [infer_predictor(df, c, None) for c in sim.TRUE_PREDICTORS]
        x, terms = design_matrix(preds, df)
        lf = logit_fit(x, df[sim.OUTCOME].to_numpy(dtype=int), terms)
        for j, name in enumerate(sim.TRUE_PREDICTORS, start=1):
            hits[name] += int(lf.ci[j, 0] <= sim.TRUE_COEFFICIENTS[name] <= lf.ci[j, 1])
    n = len(seeds)
    return {name: h / n for name, h in hits.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--first-seed", type=int, default=1000)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [one_seed(s, Path(tmp)) for s in seeds]
    elapsed = time.perf_counter() - t0
    n = len(runs)
    all_true = sum(all(t in r["selected"] for t in sim.TRUE_PREDICTORS) for r in runs) / n
    per_pred = {
        c: sum(c in r["selected"] for r in runs) / n for c in sim.TRUE_COEFFICIENTS
    }
    cov_hits = [v for r in runs for v in r["covered"].values()]
    summary = {
        "seeds": n,
        "events_mean": float(np.mean([r["events"] for r in runs])),
        "all_true_selected_rate": all_true,
        "selection_rate": per_pred,
        "noise_selected_mean": float(np.mean([
            sum(c not in sim.TRUE_PREDICTORS for c in r["selected"]) for r in runs])),
        "ci_coverage_after_selection": float(np.mean(cov_hits)) if cov_hits else None,
        "ci_coverage_fixed_true_set": fixed_set_coverage(seeds),
        "seconds_per_fit": elapsed / n,
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "runs": runs}, indent=2) + "\n")


if __name__ == "__main__":
    main()
