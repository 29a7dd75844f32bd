"""The model card in words: the Markdown written beside ``NAME.card.json``."""

from __future__ import annotations


def _number(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _row(cells) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def metrics_table(metrics: dict) -> list[str]:
    lines = [_row(["", "ROC AUC", "Brier", "log loss"]), _row(["---"] * 4)]
    for label, part in (("model", metrics), ("scorecard (rules)", metrics.get("scorecard")),
                        ("blend (win_probability)", metrics.get("blend"))):
        if part:
            auc = _number(part.get("roc_auc"))
            if part.get("roc_auc_std") is not None:
                auc += f" ± {part['roc_auc_std']:.3f}"
            lines.append(_row([label, auc, _number(part.get("brier")), _number(part.get("log_loss"))]))
    return lines


def calibration_lines(table: list[dict]) -> list[str]:
    lines = [_row(["predicted", "deals", "mean predicted", "observed won"]), _row(["---"] * 4)]
    lines += [_row([b["bin"], b["count"], _number(b["mean_predicted"], 2), _number(b["observed"], 2)]) for b in table]
    return lines


def effect_summary(feature: dict) -> str:
    """The values that move a typical deal's probability most, e.g. ``Big +0.08, Small -0.05``."""
    effects = feature.get("effects") or {}
    if "values" in effects:
        pairs = list(effects["values"].items())
    else:
        pairs = [(f"{v:g}", d) for v, d in effects.get("grid", [])]
    pairs = sorted(pairs, key=lambda p: -abs(p[1]))[:3]
    names = {"<missing>": "(missing)", "<other>": "(other)"}
    return ", ".join(f"{names.get(v, v)} {d:+.2f}" for v, d in pairs if abs(d) >= 0.005) or "–"


def markdown(card: dict) -> str:
    training = card.get("training", {})
    data = card.get("data", {})
    metrics = card.get("metrics") or {}
    out = [f"# Win model card: {card.get('name', card['model_file'])}", "",
           f"Trained {card['created_at']} with `{training.get('command', 'kam train')}`.", "",
           "## Model file", "",
           f"- file: `{card['model_file']}` ({card['format']}, {card['size_bytes']} bytes)",
           f"- sha256: `{card['sha256']}` (checked before the file is loaded; a file that differs is refused)",
           f"- classifier: `{card['classifier']['name']}` ({card['classifier'].get('description', '')}), "
           f"{card['classifier']['calibration']}",
           f"- outcome: `{training.get('target')}` = {', '.join(map(repr, training.get('won', [])))} is won; "
           f"probability of class `won` read through `classes_` {card.get('classes')}",
           "", "## Training data", "",
           f"- rows: {data.get('n_rows')} labelled, {data.get('n_distinct_rows')} distinct ({data.get('n_won')} won, "
           f"{data.get('n_lost')} lost); the model learnt from the distinct rows",
           f"- fingerprint (sha256 of the training table): `{data.get('sha256')}`"]
    out += [f"- input `{i['file']}`: {i['rows']} rows, {i['bytes']} bytes, sha256 `{i['sha256']}`"
            for i in data.get("inputs", [])]
    out += [f"- note: {n}" for n in data.get("notes", [])]
    if metrics:
        cv = metrics.get("cv", {})
        out += ["", "## Metrics", "", f"Cross-validation: {cv.get('description', '')} (seed {cv.get('seed')}; "
                f"mean over {cv.get('folds_evaluated')} folds).", "", *metrics_table(metrics), "",
                "Calibration (out-of-fold predictions, pooled):", "",
                *calibration_lines(metrics.get("calibration", []))]
    out += ["", "## Features", "",
            "Each feature's effect: how much a value moves the probability of an otherwise typical deal "
            "(every other feature at its reference value).", "",
            _row(["feature", "kind", "中文 / English", "reference", "strongest effects"]), _row(["---"] * 5)]
    out += [_row([f"`{f['name']}`", f["kind"], f"{f['label_zh']} / {f['label_en']}",
                  f["reference"] if f["reference"] is not None else "–", effect_summary(f)])
            for f in card["features"]]
    if card.get("dropped"):
        out += ["", "## Columns left out", "", _row(["column", "why"]), _row(["---"] * 2)]
        out += [_row([f"`{d['column']}`", d["reason"]]) for d in card["dropped"]]
    out += ["", "## Library versions", "", ", ".join(f"{k} {v}" for k, v in card["versions"].items() if v), ""]
    return "\n".join(out)
