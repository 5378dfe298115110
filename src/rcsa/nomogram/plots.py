"""Figures: ROC, calibration, decision curve and the rms-style nomogram (PNG and SVG).

Uses matplotlib's object API with the Agg canvas only (no pyplot, no global backend state).
Every figure of a model with a disclaimer prints it in red.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from numpy.typing import NDArray

from rcsa.nomogram._io import atomic_write
from rcsa.nomogram.score import PointsScale, Score, points_scale, predictor_points
from rcsa.nomogram.spec import ModelSpec, Predictor


def _new(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _disclaimer(fig: Figure, text: str | None) -> None:
    if text:
        fig.text(
            0.5,
            0.005,
            text.upper(),
            ha="center",
            va="bottom",
            color="#b00020",
            fontsize=9,
            fontweight="bold",
        )


def save(fig: Figure, stem: Path, overwrite: bool) -> list[Path]:
    """Write ``stem.png`` (200 dpi) and ``stem.svg`` atomically; returns both paths."""
    paths: list[Path] = []
    for ext in ("png", "svg"):
        path = stem.with_suffix(f".{ext}")

        def write(tmp: Path, fmt: str = ext) -> None:
            fig.savefig(tmp, format=fmt, dpi=200)

        atomic_write(path, write, overwrite)
        paths.append(path)
    return paths


def roc_figure(
    y: NDArray[np.int_],
    p: NDArray[np.float64],
    result: dict[str, Any],
    title: str,
    disclaimer: str | None,
) -> Figure:
    order = np.argsort(-p, kind="mergesort")
    ys, ps = y[order], p[order]
    distinct = np.r_[np.flatnonzero(np.diff(ps)), ys.size - 1]
    tps = np.cumsum(ys)[distinct]
    fps = (1 + distinct) - tps
    tpr = np.r_[0, tps / max(tps[-1], 1)]
    fpr = np.r_[0, fps / max(fps[-1], 1)]
    fig = _new(5.2, 5.2)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="0.7", lw=1, ls="--")
    lo, hi = result["auc_ci95"]
    ax.plot(
        fpr,
        tpr,
        color="#1f4e79",
        lw=2,
        label=f"AUC {result['auc']:.3f} (95% CI {lo:.3f}-{hi:.3f}, DeLong)",
    )
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("Sensitivity")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_title(title, fontsize=10)
    _disclaimer(fig, disclaimer)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def calibration_figure(
    y: NDArray[np.int_],
    p: NDArray[np.float64],
    result: dict[str, Any],
    title: str,
    disclaimer: str | None,
) -> Figure:
    fig = _new(5.2, 5.6)
    ax = fig.add_subplot()
    top = float(
        min(
            1.0,
            max(p.max(), max(g["observed_ci95"][1] for g in result["calibration_curve"]["groups"]))
            * 1.05,
        )
    )
    ax.plot([0, top], [0, top], color="0.6", lw=1, ls="--", label="Ideal")
    low = result["calibration_curve"]["lowess"]
    ax.plot(low["predicted"], low["observed"], color="#1f4e79", lw=2, label="LOWESS")
    groups = result["calibration_curve"]["groups"]
    gx = [g["mean_predicted"] for g in groups]
    gy = [g["observed"] for g in groups]
    err = np.array(
        [
            [g["observed"] - g["observed_ci95"][0] for g in groups],
            [g["observed_ci95"][1] - g["observed"] for g in groups],
        ]
    )
    ax.errorbar(
        gx,
        gy,
        yerr=err,
        fmt="o",
        color="#c55a11",
        ms=4,
        capsize=2,
        lw=1,
        label="Deciles of risk (95% CI)",
    )
    # rug of predictions: events above, non-events below
    ax.plot(p[y == 1], np.full(int((y == 1).sum()), top * 0.985), "|", color="0.3", ms=6)
    ax.plot(p[y == 0], np.full(int((y == 0).sum()), top * 0.015), "|", color="0.6", ms=6)
    hl = result["hosmer_lemeshow"]
    ax.text(
        0.02 * top,
        0.80 * top,
        f"Intercept {result['calibration_intercept']:.2f}\n"
        f"Slope {result['calibration_slope']:.2f}\n"
        f"Brier {result['brier']:.3f}\n"
        f"Hosmer-Lemeshow chi2 {hl['statistic']:.2f}, df {hl['df']}, p {hl['p_value']:.3f}",
        fontsize=8,
        va="top",
    )
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_aspect("equal")
    ax.set_xlabel("Predicted probability")
    ax.set_ylabel("Observed proportion")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_title(title, fontsize=10)
    _disclaimer(fig, disclaimer)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def dca_figure(result: dict[str, Any], title: str, disclaimer: str | None) -> Figure:
    nb = result["net_benefit"]
    pts = np.array([float(k) for k in nb])
    model = np.array([v["model"] for v in nb.values()])
    all_ = np.array([v["treat_all"] for v in nb.values()])
    prev = result["events"] / result["n"]
    xmax = float(min(0.99, max(0.5, 2 * prev)))
    keep = pts <= xmax + 1e-9
    fig = _new(6.0, 4.4)
    ax = fig.add_subplot()
    ax.plot(pts[keep], model[keep], color="#1f4e79", lw=2, label="Model")
    ax.plot(pts[keep], all_[keep], color="#c55a11", lw=1.2, label="Treat all")
    ax.axhline(0, color="0.3", lw=1, label="Treat none")
    ax.set_xlim(0, xmax)
    ax.set_ylim(-0.05 * max(prev, 0.05), max(prev, float(model[keep].max())) * 1.1)
    ax.set_xlabel("Threshold probability")
    ax.set_ylabel("Net benefit")
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    ax.set_title(title, fontsize=10)
    _disclaimer(fig, disclaimer)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def _nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    loc = MaxNLocator(nbins=n, steps=[1, 2, 2.5, 5, 10])
    return [float(t) for t in loc.tick_values(lo, hi) if lo - 1e-9 <= t <= hi + 1e-9]


def _axis(
    ax: Axes,
    yrow: float,
    positions: list[float],
    labels: list[str],
    name: str,
    minor: list[float] | None = None,
    span: tuple[float, float] | None = None,
) -> None:
    """One rms nomogram axis: a horizontal line (over ``span``, default the ticks) with ticks
    and labels above it."""
    ends = list(span) if span is not None else positions
    if ends:
        ax.plot([min(ends), max(ends)], [yrow, yrow], color="black", lw=1)
    for x, lab in zip(positions, labels, strict=True):
        ax.plot([x, x], [yrow, yrow + 0.18], color="black", lw=1)
        ax.text(x, yrow + 0.24, lab, ha="center", va="bottom", fontsize=7.5)
    for x in minor or []:
        ax.plot([x, x], [yrow, yrow + 0.09], color="black", lw=0.7)
    ax.text(-4, yrow, name, ha="right", va="center", fontsize=9)


def _fmt(v: float) -> str:
    return f"{v:g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2g}"


def _predictor_axis(
    spec: ModelSpec, scale: PointsScale, pred: Predictor
) -> tuple[list[float], list[str]]:
    if pred.type == "continuous":
        assert pred.plausible_range is not None
        lo, hi = pred.plausible_range
        if lo == int(lo) and hi == int(hi) and hi - lo <= 12:  # counts: integer ticks
            ticks = [float(v) for v in range(int(lo), int(hi) + 1)]
        else:
            ticks = _nice_ticks(lo, hi, n=8)
        return [predictor_points(spec, scale, pred, t) for t in ticks], [_fmt(t) for t in ticks]
    if pred.type == "binary":
        labels = list(pred.display_levels)
        return [predictor_points(spec, scale, pred, float(v)) for v in (0, 1)], labels
    return [predictor_points(spec, scale, pred, lv) for lv in pred.levels], list(pred.levels)


def _declutter(pos: list[float], labels: list[str]) -> tuple[list[float], list[str]]:
    """Drop labels that would overlap a neighbour (keeps the first of each cluster); one
    character is about 1.1 axis units at the figure's size and font."""
    keep_p: list[float] = []
    keep_l: list[str] = []
    for p, lab in sorted(zip(pos, labels, strict=True)):
        if keep_p and abs(p - keep_p[-1]) < 1.1 * (len(lab) + len(keep_l[-1])) / 2 + 0.8:
            continue
        keep_p.append(p)
        keep_l.append(lab)
    return keep_p, keep_l


def nomogram_figure(spec: ModelSpec, patient: Score | None = None) -> Figure:
    """The nomogram in the layout of ``rms::nomogram``: Points (0-100), one axis per predictor,
    Total Points, Linear Predictor and the risk axis, all on one horizontal scale.

    With ``patient`` (a :class:`Score` of this model) the patient's value on every predictor
    axis, its points on the Points axis, the total points and the risk are marked in red."""
    scale = points_scale(spec)
    n_rows = len(spec.predictors) + 4
    fig = _new(9.0, 0.62 * n_rows + 1.3)
    ax = fig.add_subplot()
    ax.set_axis_off()
    row = float(n_rows)
    ticks = [float(t) for t in range(0, 101, 10)]
    _axis(ax, row, ticks, [f"{t:g}" for t in ticks], "Points", minor=[t + 5 for t in ticks[:-1]])
    for pred in spec.predictors:
        row -= 1
        pos, labels = _predictor_axis(spec, scale, pred)
        pos, labels = _declutter(pos, labels)
        unit = f" ({pred.unit})" if pred.unit and pred.unit not in ("count",) else ""
        span = None
        if pred.type == "continuous" and pred.plausible_range is not None:
            lo, hi = pred.plausible_range
            span = (
                predictor_points(spec, scale, pred, lo),
                predictor_points(spec, scale, pred, hi),
            )
        _axis(ax, row, pos, labels, f"{pred.label}{unit}", span=span)
    total_max = scale.max_total_points
    to_x = 100.0 / total_max
    row -= 1
    tt = _nice_ticks(0, total_max, n=10)
    _axis(ax, row, [t * to_x for t in tt], [_fmt(t) for t in tt], "Total Points", span=(0.0, 100.0))
    row -= 1
    lp_lo = scale.lp_at_zero_points
    lp_hi = lp_lo + total_max / scale.points_per_lp
    lpt = _nice_ticks(lp_lo, lp_hi, n=8)
    _axis(
        ax,
        row,
        [scale.total_points_for_lp(t) * to_x for t in lpt],
        [_fmt(t) for t in lpt],
        "Linear Predictor",
        span=(0.0, 100.0),
    )
    row -= 1
    probs = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]
    pos, labs = [], []
    for pr in probs:
        tp = scale.total_points_for_lp(math.log(pr / (1 - pr)))
        if 0 <= tp <= total_max:
            pos.append(tp * to_x)
            labs.append(f"{pr:g}")
    pos, labs = _declutter(pos, labs)
    _axis(ax, row, pos, labs, f"Risk of {spec.outcome_label}")
    if patient is not None:
        _mark_patient(ax, spec, patient, float(n_rows), row, to_x)
    ax.set_xlim(-45, 104)
    ax.set_ylim(row - (1.1 if patient is not None else 0.6), n_rows + 0.8)
    title = f"Nomogram: {spec.name} (model {spec.model_version})"
    fig.suptitle(title, fontsize=11, y=0.985)
    _disclaimer(fig, spec.disclaimer)
    fig.subplots_adjust(left=0.02, right=0.98, top=0.93, bottom=0.05)
    return fig


def _mark_patient(
    ax: Axes, spec: ModelSpec, patient: Score, top: float, risk_row: float, to_x: float
) -> None:
    """Red marks of one patient: a dot per predictor axis joined to the Points axis, the total
    on Total Points, joined down through Linear Predictor to the risk axis. Points outside an
    axis (values beyond the plausible range) are drawn at the axis end with an open marker."""
    red = "#c62828"

    def clip(x: float) -> tuple[float, bool]:
        return min(max(x, -1.0), 101.0), not -1.0 <= x <= 101.0

    for i, pred in enumerate(spec.predictors):
        yrow = top - 1 - i
        x, out = clip(patient.points[pred.name])
        ax.plot([x, x], [yrow, top], color=red, lw=0.8, ls=(0, (3, 2)), zorder=3)
        ax.plot([x], [yrow], marker="o", ms=6, color=red, mfc="white" if out else red, zorder=4)
        ax.plot([x], [top], marker="v", ms=5, color=red, zorder=4)
    total_row = top - 1 - len(spec.predictors)
    x, out = clip(patient.total_points * to_x)
    ax.plot([x, x], [risk_row, total_row], color=red, lw=1.0, ls=(0, (3, 2)), zorder=3)
    for yrow in (total_row, total_row - 1, risk_row):
        ax.plot([x], [yrow], marker="o", ms=6, color=red, mfc="white" if out else red, zorder=4)
    ax.text(x, risk_row - 0.42, f"{patient.total_points:.1f} points -> risk "
            f"{patient.probability:.3f}", ha="center", va="top", fontsize=8, color=red,
            fontweight="bold")
