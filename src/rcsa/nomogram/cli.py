"""``rcsa nomogram``: score, fit, evaluate, show, plot and simulate risk models.

Registered on the main app by :mod:`rcsa.cli` (``register``). The library modules
(``rcsa.nomogram.score``, ``.fit``, ``.evaluate``, ...) are imported inside the commands, so
``rcsa --help`` stays fast. Inputs the user gives that cannot be used raise typed errors
(``ModelSpecError``, ``DataError``, ``ScoringError``: exit code 4).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rcsa.cli_options import Fail, NomogramModelOpt, OverwriteOpt
from rcsa.errors import DataError

out = Console()
err = Console(stderr=True)


def _disclaimer(text: str | None) -> None:
    if text:
        err.print(f"[bold red]{text.upper()}[/]", highlight=False)


def _warnings(items: Iterable[str]) -> None:
    for w in items:
        err.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)


def parse_cutoffs(text: str) -> list[float]:
    """``--risk-cutoffs 0.10,0.30`` -> ``[0.1, 0.3]``; anything else is a :class:`DataError`."""
    try:
        return [float(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise DataError(f"--risk-cutoffs {text!r}: expected probabilities separated by commas, "
                        "e.g. 0.10,0.30") from None


def register(app: typer.Typer, fail: Fail) -> None:
    """Add the ``nomogram`` command group to ``app``; ``fail`` maps exceptions to exit codes."""
    nomogram_app = typer.Typer(
        name="nomogram",
        help="Risk models: score patients, fit (LASSO + logistic) and evaluate nomograms.",
        no_args_is_help=True,
    )
    app.add_typer(nomogram_app, name="nomogram")

    @nomogram_app.command("score")
    def nomogram_score(
        model: NomogramModelOpt,
        table: Annotated[
            Path | None,
            typer.Argument(help="Feature table (CSV/Parquet); omit to score one patient."),
        ] = None,
        clinical: Annotated[
            Path | None, typer.Option("--clinical", help="Clinical CSV merged on --id-column.")
        ] = None,
        id_column: Annotated[
            str, typer.Option("--id-column", help="Id column to merge on.")
        ] = "scan_id",
        assign: Annotated[
            list[str] | None,
            typer.Option(
                "--set", help="NAME=VALUE (repeatable): one patient, or a column for all rows."
            ),
        ] = None,
        out_csv: Annotated[
            Path | None, typer.Option("--out", help="Write the scored table here (CSV).")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="One patient: print JSON.")] = False,
        overwrite: OverwriteOpt = False,
    ) -> None:
        """Score one patient (--set age_years=72 ...) or a table (+ clinical CSV) with a model."""
        from rcsa.nomogram.score import score

        try:
            res = score(
                model,
                table,
                clinical=clinical,
                id_column=id_column,
                assignments=assign or [],
                out=out_csv,
                overwrite=overwrite,
            )
        except Exception as exc:
            raise fail(exc) from None
        if res.patient is not None:
            s = res.patient
            if as_json:
                sys.stdout.write(json.dumps(s.to_dict(), indent=2) + "\n")
            else:
                t = Table(title=f"{s.model}", title_justify="left")
                for col in ("predictor", "value", "points"):
                    t.add_column(col, justify="right" if col != "predictor" else "left")
                for name, pts in s.points.items():
                    t.add_row(name, str(s.values[name]), f"{pts:.1f}")
                t.add_row("[bold]total points[/]", "", f"[bold]{s.total_points:.1f}[/]")
                out.print(t)
                out.print(
                    f"linear predictor {s.linear_predictor:.4f}   probability "
                    f"{s.probability:.4f}   risk group {s.risk_group or '-'}",
                    highlight=False,
                )
            _warnings(s.flags)
        else:
            assert res.table is not None
            if res.out is None:
                sys.stdout.write(res.table.to_csv(index=False))
            else:
                n_ok = int((res.table["reason"] == "").sum())
                out.print(f"scored {n_ok} of {len(res.table)} row(s) -> {res.out}", highlight=False)
            _warnings(res.warnings)
        _disclaimer(res.spec.disclaimer)


    @nomogram_app.command("fit")
    def nomogram_fit(
        data: Annotated[
            Path, typer.Argument(help="Development data (CSV/Parquet), one row per patient.")
        ],
        outcome: Annotated[str, typer.Option("--outcome", help="0/1 outcome column.")],
        spec_out: Annotated[Path, typer.Option("--out", help="Spec file to write (.json/.yaml).")],
        candidates: Annotated[
            list[str] | None,
            typer.Option(
                "--candidates",
                help="Candidate predictor columns (repeat or comma-separate); "
                "default: every column but the outcome and --id-column.",
            ),
        ] = None,
        validation: Annotated[
            Path | None, typer.Option("--validation", help="External validation table.")
        ] = None,
        split: Annotated[
            float | None, typer.Option("--split", help="Hold out this fraction (stratified).")
        ] = None,
        lambda_rule: Annotated[
            str, typer.Option("--lambda", help="LASSO selection rule: 1se or min.")
        ] = "1se",
        seed: Annotated[
            int, typer.Option("--seed", help="Seed of folds, split and bootstrap.")
        ] = 20260701,
        name: Annotated[str | None, typer.Option("--name", help="Model name in the spec.")] = None,
        cohort: Annotated[
            str | None, typer.Option("--cohort", help="Cohort description for the provenance.")
        ] = None,
        demonstration: Annotated[
            bool,
            typer.Option(
                "--demonstration", help="Label the model 'demonstration - not for clinical use'."
            ),
        ] = False,
        id_column: Annotated[
            str, typer.Option("--id-column", help="Id column (never a candidate).")
        ] = "scan_id",
        risk_cutoffs: Annotated[
            str,
            typer.Option(
                "--risk-cutoffs", help="Probability cut-offs of the risk groups, comma-separated."
            ),
        ] = "0.10,0.30",
        bootstrap: Annotated[
            int, typer.Option("--bootstrap", help="Optimism resamples (>= 200).")
        ] = 200,
        with_selection: Annotated[
            bool,
            typer.Option(
                "--optimism-with-selection",
                help="Repeat the LASSO selection in every bootstrap resample (slow: ~1 s each).",
            ),
        ] = False,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the fit summary as JSON.")
        ] = False,
        overwrite: OverwriteOpt = False,
    ) -> None:
        """LASSO logistic (10-fold CV) -> multivariable logistic -> model spec."""
        from rcsa.nomogram.fit import fit

        try:
            cands = [c.strip() for item in candidates or [] for c in item.split(",") if c.strip()]
            cuts = parse_cutoffs(risk_cutoffs)
            res = fit(
                data,
                outcome,
                spec_out,
                candidates=cands or None,
                validation=validation,
                split=split,
                seed=seed,
                lambda_rule=lambda_rule,
                name=name,
                cohort=cohort,
                demonstration=demonstration,
                id_column=id_column,
                risk_cutoffs=cuts,
                n_bootstrap=max(bootstrap, 1),
                optimism_with_selection=with_selection,
                overwrite=overwrite,
            )
        except Exception as exc:
            raise fail(exc) from None
        if as_json:
            sys.stdout.write(json.dumps(res.to_dict(), indent=2) + "\n")
        else:
            out.print(
                f"n {res.n_train}, events {res.events_train}; LASSO 10-fold CV: lambda.min "
                f"{res.lasso.lambda_min:.4g}, lambda.1se {res.lasso.lambda_1se:.4g} "
                f"(selection by lambda.{res.lasso.rule})",
                highlight=False,
            )
            t = Table(title="multivariable logistic regression", title_justify="left")
            for col in ("term", "coef", "OR", "95% CI", "p"):
                t.add_column(col, justify="left" if col == "term" else "right")
            for r in res.table:
                lo, hi = r["or_ci95"]
                t.add_row(
                    r["term"],
                    f"{r['coefficient']:.4f}",
                    f"{r['odds_ratio']:.3g}",
                    f"{lo:.3g}-{hi:.3g}",
                    f"{r['p_value']:.2g}",
                )
            out.print(t)
            lo, hi = res.auc_train_ci95
            out.print(
                f"AUC training {res.auc_train:.3f} ({lo:.3f}-{hi:.3f}), optimism-corrected "
                f"{res.auc_optimism_corrected or float('nan'):.3f}",
                highlight=False,
            )
            if res.auc_validation is not None and res.auc_validation_ci95 is not None:
                vlo, vhi = res.auc_validation_ci95
                out.print(
                    f"AUC validation {res.auc_validation:.3f} ({vlo:.3f}-{vhi:.3f}), "
                    f"n {res.n_validation}",
                    highlight=False,
                )
            out.print(f"spec -> {res.out}", highlight=False)
        _warnings(res.warnings)
        _disclaimer(res.spec.get("disclaimer"))


    @nomogram_app.command("evaluate")
    def nomogram_evaluate(
        data: Annotated[
            Path, typer.Argument(help="Table with the outcome (and predictors or a risk column).")
        ],
        outcome: Annotated[str, typer.Option("--outcome", help="0/1 outcome column.")],
        prob: Annotated[
            str | None, typer.Option("--prob", help="Column of predicted probabilities.")
        ] = None,
        model: Annotated[
            str | None, typer.Option("--model", "-m", help="Spec file or built-in name.")
        ] = None,
        json_out: Annotated[
            Path | None, typer.Option("--json", help="Write all results as JSON here.")
        ] = None,
        figures: Annotated[
            Path | None,
            typer.Option("--figures", help="Folder for ROC/calibration/DCA/nomogram PNG+SVG."),
        ] = None,
        bootstrap: Annotated[
            int, typer.Option("--bootstrap", help="Optimism resamples (>= 200).")
        ] = 200,
        seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 20260701,
        overwrite: OverwriteOpt = False,
    ) -> None:
        """AUC (DeLong), optimism-corrected AUC, calibration, Hosmer-Lemeshow, Brier, decision curve."""  # noqa: E501
        from rcsa.nomogram.evaluate import evaluate

        try:
            res = evaluate(
                data,
                outcome,
                prob_column=prob,
                model=model,
                json_out=json_out,
                figures=figures,
                n_bootstrap=bootstrap,
                seed=seed,
                overwrite=overwrite,
            )
        except Exception as exc:
            raise fail(exc) from None
        r = res.result
        t = Table(title=f"evaluation: {r['predictions']}", show_header=False, title_justify="left")
        t.add_column("measure", style="bold")
        t.add_column("value")
        lo, hi = r["auc_ci95"]
        t.add_row("n / events", f"{r['n']} / {r['events']}")
        t.add_row(
            "AUC (DeLong SE, 95% CI)",
            f"{r['auc']:.4f} ({r['auc_se_delong']:.4f}, {lo:.4f}-{hi:.4f})",
        )
        if r["auc_optimism_corrected"] is not None:
            t.add_row(
                "AUC optimism-corrected",
                f"{r['auc_optimism_corrected']:.4f} "
                f"(optimism {r['optimism']:.4f}, {r['bootstrap']['resamples']} resamples)",
            )
        t.add_row("Brier", f"{r['brier']:.4f}")
        t.add_row(
            "calibration intercept / slope",
            f"{r['calibration_intercept']:.3f} / {r['calibration_slope']:.3f}",
        )
        hl = r["hosmer_lemeshow"]
        t.add_row(
            "Hosmer-Lemeshow", f"chi2 {hl['statistic']:.2f}, df {hl['df']}, p {hl['p_value']:.3f}"
        )
        for key in ("0.10", "0.20", "0.30", "0.40", "0.50"):
            nb = r["net_benefit"][key]
            t.add_row(f"net benefit at {key}",
                      f"{nb['model']:.4f} (treat all {nb['treat_all']:.4f})")
        out.print(t)
        for path in [*([res.json_out] if res.json_out else []), *res.figures]:
            out.print(f"-> {path}", highlight=False)
        _warnings(r["warnings"])
        _disclaimer(r["disclaimer"])


    @nomogram_app.command("show")
    def nomogram_show(
        model: Annotated[str, typer.Argument(help="Spec file or built-in name.")],
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Validate a model spec and describe it (predictors, coefficients, points)."""
        from rcsa.nomogram.score import describe

        try:
            d = describe(model)
        except Exception as exc:
            raise fail(exc) from None
        if as_json:
            sys.stdout.write(json.dumps(d, indent=2) + "\n")
            return
        icpt = "none" if d["intercept"] is None else f"{d['intercept']:.4f}"
        out.print(
            f"{d['name']} (model {d['model_version']}, {d['status']}, spec {d['spec_version']}): "
            f"outcome {d['outcome']}; intercept {icpt}",
            highlight=False,
        )
        out.print(f"intended use: {d['intended_use']}", highlight=False)
        t = Table(title_justify="left")
        for col in ("predictor", "type", "unit", "range / levels", "coef", "max pts"):
            t.add_column(col, overflow="fold")
        for p in d["predictors"]:
            if p["type"] == "continuous":
                rng = f"{p['plausible_range'][0]:g}-{p['plausible_range'][1]:g}"
            else:
                rng = ", ".join(p["levels"]) or "0/1"
            coef = p["coefficient"]
            if isinstance(coef, dict):
                coef_text = ", ".join(f"{k}: {v:.4g}" for k, v in coef.items())
            else:
                coef_text = "-" if coef is None else f"{coef:.4g}"
            mp = p.get("max_points")
            name = p["name"] if p["column"] == p["name"] else f"{p['name']} ({p['column']})"
            t.add_row(name, p["type"], p["unit"] or "", rng, coef_text,
                      "" if mp is None else f"{mp:.1f}")
        out.print(t)
        _disclaimer(d["disclaimer"])


    @nomogram_app.command("plot")
    def nomogram_plot(
        model: Annotated[str, typer.Argument(help="Spec file or built-in name.")],
        out_dir: Annotated[
            Path, typer.Option("--out", help="Folder for nomogram.png and nomogram.svg.")
        ],
        overwrite: OverwriteOpt = False,
    ) -> None:
        """Draw the nomogram (rms layout) as PNG and SVG."""
        from rcsa.nomogram.evaluate import plot_nomogram

        try:
            paths = plot_nomogram(model, out_dir, overwrite=overwrite)
        except Exception as exc:
            raise fail(exc) from None
        for path in paths:
            out.print(f"-> {path}", highlight=False)


    @nomogram_app.command("simulate")
    def nomogram_simulate(
        out_csv: Annotated[Path, typer.Argument(help="CSV to write.")],
        n: Annotated[int, typer.Option("--n", min=1, help="Patients.")] = 428,
        seed: Annotated[
            int, typer.Option("--seed", help="Seed (default: the documented cohort).")
        ] = 18,
        overwrite: OverwriteOpt = False,
    ) -> None:
        """Write the documented simulated cohort (demonstration data, not patients)."""
        from rcsa.nomogram.simulate import write_cohort

        try:
            df = write_cohort(str(out_csv), n=n, seed=seed, overwrite=overwrite)
        except Exception as exc:
            raise fail(exc) from None
        out.print(
            f"{len(df)} simulated patients, {int(df['rbp'].sum())} events -> {out_csv}",
            highlight=False,
        )
