"""``kam evaluate --report FILE.html``: one self-contained page, the ROC and calibration plots drawn as
inline SVG (no plotting library, nothing fetched when the page opens)."""

from __future__ import annotations

import html
import json

import numpy as np

SIZE, PAD = 360, 44
COLOURS = {"model": "#1f6fb2", "scorecard": "#d9822b", "blend": "#2e8b57"}
LABELS = {"model": "model", "scorecard": "scorecard (rules)", "blend": "blend (win_probability)"}


def _xy(x: float, y: float) -> str:
    return f"{PAD + x * (SIZE - 2 * PAD):.1f},{SIZE - PAD - y * (SIZE - 2 * PAD):.1f}"


def _frame(title: str, xlabel: str, ylabel: str) -> list[str]:
    inner = SIZE - 2 * PAD
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{SIZE}" height="{SIZE}" viewBox="0 0 {SIZE} {SIZE}" '
           f'role="img" aria-label="{html.escape(title)}">',
           f'<rect x="{PAD}" y="{PAD}" width="{inner}" height="{inner}" fill="#fff" stroke="#999"/>',
           f'<polyline points="{_xy(0, 0)} {_xy(1, 1)}" fill="none" stroke="#bbb" stroke-dasharray="4 4"/>']
    for t in (0, 0.25, 0.5, 0.75, 1):
        x0, y0 = _xy(t, 0).split(",")
        x1, y1 = _xy(0, t).split(",")
        out += [f'<text x="{x0}" y="{float(y0) + 14:.1f}" font-size="10" text-anchor="middle">{t:g}</text>',
                f'<text x="{float(x1) - 6:.1f}" y="{float(y1) + 3:.1f}" font-size="10" text-anchor="end">{t:g}</text>']
    out += [f'<text x="{SIZE / 2}" y="{PAD - 14}" font-size="13" text-anchor="middle" font-weight="bold">'
            f'{html.escape(title)}</text>',
            f'<text x="{SIZE / 2}" y="{SIZE - 8}" font-size="11" text-anchor="middle">{html.escape(xlabel)}</text>',
            f'<text x="12" y="{SIZE / 2}" font-size="11" text-anchor="middle" '
            f'transform="rotate(-90 12 {SIZE / 2})">{html.escape(ylabel)}</text>']
    return out


def _legend(items: list[tuple[str, str]]) -> list[str]:
    out = []
    for i, (label, colour) in enumerate(items):
        y = SIZE - PAD - 12 - 14 * (len(items) - 1 - i)
        out += [f'<rect x="{SIZE - PAD - 150}" y="{y - 8}" width="10" height="10" fill="{colour}"/>',
                f'<text x="{SIZE - PAD - 136}" y="{y + 1}" font-size="10">{html.escape(label)}</text>']
    return out


def roc_svg(won: np.ndarray, curves: dict[str, np.ndarray], aucs: dict[str, float | None]) -> str:
    from sklearn.metrics import roc_curve

    out = _frame("ROC curve", "false positive rate (lost deals ranked high)", "true positive rate (won deals found)")
    legend = []
    for name, p in curves.items():
        fpr, tpr, _ = roc_curve(won, p)
        keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), 300)).astype(int))
        points = " ".join(_xy(a, b) for a, b in zip(fpr[keep], tpr[keep]))
        out.append(f'<polyline points="{points}" fill="none" stroke="{COLOURS[name]}" stroke-width="2"/>')
        auc = aucs.get(name)
        legend.append((f"{LABELS[name]}" + (f", AUC {auc:.3f}" if auc is not None else ""), COLOURS[name]))
    return "\n".join(out + _legend(legend) + ["</svg>"])


def calibration_svg(tables: dict[str, list[dict]]) -> str:
    out = _frame("Calibration", "predicted probability of winning", "share of deals won")
    for name, table in tables.items():
        points = [(b["mean_predicted"], b["observed"], b["count"]) for b in table]
        line = " ".join(_xy(x, y) for x, y, _ in points)
        out.append(f'<polyline points="{line}" fill="none" stroke="{COLOURS[name]}" stroke-width="1.5"/>')
        biggest = max((n for _, _, n in points), default=1)
        for x, y, n in points:
            cx, cy = _xy(x, y).split(",")
            out.append(f'<circle cx="{cx}" cy="{cy}" r="{2.5 + 5 * (n / biggest) ** 0.5:.1f}" fill="{COLOURS[name]}" '
                       f'fill-opacity="0.6"><title>{LABELS[name]}: {n} deals, predicted {x:.2f}, won {y:.2f}'
                       '</title></circle>')
    return "\n".join(out + _legend([(LABELS[n], COLOURS[n]) for n in tables]) + ["</svg>"])


def _cell(value) -> str:
    return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))


def page(evaluation, title: str) -> str:
    """The report for one evaluation (``kam evaluate``)."""
    summary = evaluation.summary
    parts = {"model": summary, "scorecard": summary.get("scorecard"), "blend": summary.get("blend")}
    parts = {k: v for k, v in parts.items() if v}
    curves = {"model": evaluation.model}
    if evaluation.scorecard is not None:
        curves["scorecard"] = evaluation.scorecard
    rows = "".join(
        f"<tr><th>{LABELS[k]}</th><td>{_cell(v.get('roc_auc'))}"
        + (f" ± {v['roc_auc_std']:.3f}" if v.get("roc_auc_std") is not None else "")
        + f"</td><td>{_cell(v.get('brier'))}</td><td>{_cell(v.get('log_loss'))}</td></tr>" for k, v in parts.items())
    calibration = "".join(
        f"<h3>{LABELS[k]}</h3><table><tr><th>predicted</th><th>deals</th><th>mean predicted</th><th>observed won"
        "</th></tr>" + "".join(f"<tr><td>{b['bin']}</td><td>{b['count']}</td><td>{b['mean_predicted']:.3f}</td>"
                               f"<td>{b['observed']:.3f}</td></tr>" for b in v.get("calibration", [])) + "</table>"
        for k, v in parts.items())
    dropped = "".join(f"<li><code>{html.escape(d['column'])}</code>: {html.escape(d['reason'])}</li>"
                      for d in summary.get("dropped", []))
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in summary.get("notes", []))
    features = ", ".join(f"<code>{html.escape(f)}</code>" for f in summary.get("features", []))
    cv = summary.get("cv", {})
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 900px; color: #222; }}
table {{ border-collapse: collapse; margin: .5em 0 1em; }}
th, td {{ border: 1px solid #ccc; padding: .25em .6em; text-align: right; }}
th:first-child {{ text-align: left; }}
.plots {{ display: flex; flex-wrap: wrap; gap: 1em; }}
code {{ background: #f3f3f3; padding: 0 .2em; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Outcome <code>{html.escape(str(summary.get('target')))}</code> =
{html.escape(', '.join(map(str, summary.get('won', []))))}; {summary.get('n_rows')} labelled rows,
{summary.get('n_distinct_rows')} distinct ({summary.get('n_won')} won, {summary.get('n_lost')} lost).
Classifier: <code>{html.escape(str(summary.get('classifier')))}</code>.
Validation: {html.escape(str(cv.get('description', '')))}.</p>
<h2>Metrics</h2>
<table><tr><th></th><th>ROC AUC</th><th>Brier</th><th>log loss</th></tr>{rows}</table>
<p>ROC AUC: how often a won deal is ranked above a lost one (0.5 = chance). Brier score: mean squared
error of the probability (lower is better; 0.25 = always saying 50 %). The scorecard's rules are not fitted;
they are scored on the same folds.</p>
<div class="plots">
{roc_svg(evaluation.won, curves, {k: v.get('roc_auc') for k, v in parts.items()})}
{calibration_svg({k: v.get('calibration', []) for k, v in parts.items() if k != 'blend'})}
</div>
<h2>Calibration tables</h2>
{calibration}
<h2>Features</h2>
<p>{features}</p>
{f'<h3>Left out</h3><ul>{dropped}</ul>' if dropped else ''}
{f'<h2>Notes</h2><ul>{notes}</ul>' if notes else ''}
<details><summary>All metrics as JSON</summary>
<pre>{html.escape(json.dumps(summary, indent=2, ensure_ascii=False))}</pre></details>
</body></html>
"""
