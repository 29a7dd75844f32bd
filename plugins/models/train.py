"""Fitting and honest evaluation: the scikit-learn Pipeline, cross-validation, metrics, explanations.

The persisted model is one ``Pipeline``: a ``ColumnTransformer`` with one encoder per feature (one-hot
for categories; median imputation with a missing indicator, then scaling, for numbers, dates and
criterion points), then the classifier wrapped in ``CalibratedClassifierCV`` (sigmoid, fitted on
out-of-fold predictions; the classifier itself is refitted on all rows). Probabilities are always
read through ``classes_``, never by position.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from attrs import evolve, frozen

from kamcore.errors import DataError

from .features import CATEGORY, UNSEEN, Feature

WON, LOST = "won", "lost"
CALIBRATION_FOLDS = 5
MAX_CATEGORIES = 50   # per categorical column; rarer values share one column
GRID = 20             # quantile steps for the effect of a number


# -- the two built-in classifiers (registered through register_win_models) ----------------------


def build_logistic(**params):
    """L2-regularised logistic regression (C = 0.1: strong shrinkage, for a few hundred deals)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(**{"C": 0.1, "max_iter": 2000, **params})


def build_gradient_boosting(**params):
    """Histogram gradient boosting with shallow trees and a slow learning rate (no early stopping, so a
    seed gives the same model every time)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    defaults = {"max_depth": 2, "learning_rate": 0.03, "max_iter": 200, "l2_regularization": 1.0,
                "early_stopping": False}
    return HistGradientBoostingClassifier(**{**defaults, **params})


# -- the pipeline ---------------------------------------------------------------------------------


def build_pipeline(features: list[Feature], win_model, *, seed: int, minority: int):
    """An unfitted Pipeline for these features around the registered classifier, calibrated."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    folds = min(CALIBRATION_FOLDS, minority)
    if folds < 2:
        raise DataError("too little history: at least 2 won and 2 lost deals are needed to train and calibrate")
    parts = []
    for i, f in enumerate(features):
        if f.kind == CATEGORY:
            encoder = OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=MAX_CATEGORIES,
                                    sparse_output=False)
        else:
            encoder = make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                                    StandardScaler())
        parts.append((f"f{i}", encoder, [f.name]))
    classifier = win_model.build()
    if "random_state" in classifier.get_params():
        classifier.set_params(random_state=seed)
    calibrated = CalibratedClassifierCV(classifier, method="sigmoid", ensemble=False,
                                        cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    return Pipeline([("features", ColumnTransformer(parts, sparse_threshold=0.0)), ("classifier", calibrated)])


def won_probability(pipeline, x: pl.DataFrame) -> np.ndarray:
    """P(won) from ``predict_proba``, the column found through ``classes_``."""
    classes = [str(c) for c in pipeline.classes_]
    return pipeline.predict_proba(x)[:, classes.index(WON)]


def labels(won: np.ndarray) -> np.ndarray:
    return np.where(won, WON, LOST)


def minority(won: np.ndarray) -> int:
    return int(min(won.sum(), (~won).sum()))


def fit(features: list[Feature], x: pl.DataFrame, won: np.ndarray, win_model, seed: int):
    """Fit on one thread: on a few hundred rows, OpenMP's start-up costs the boosting more than it saves
    (3x slower on two cores), and the result is the same."""
    from threadpoolctl import threadpool_limits

    pipeline = build_pipeline(features, win_model, seed=seed, minority=minority(won))
    with threadpool_limits(limits=1, user_api="openmp"):
        return pipeline.fit(x, labels(won))


# -- explanations ---------------------------------------------------------------------------------


def with_effects(pipeline, features: list[Feature], x: pl.DataFrame) -> list[Feature]:
    """How much each value of each feature moves the probability of a typical deal.

    The typical deal has every feature at its reference (the most frequent category, the median
    number). For each feature, its values are put into that deal one at a time and the change in
    P(won) is recorded: a table per category, a quantile grid per number, and the change when the
    value is missing or was never seen in training. Scoring then explains a deal with lookups.
    """
    rows: dict[str, list] = {f.name: [] for f in features}
    blocks: list[tuple[Feature, list]] = []
    reference = {f.name: (f.reference if f.kind == CATEGORY or f.reference is not None else float("nan"))
                 for f in features}
    for f in features:
        if f.kind == CATEGORY:
            values = sorted(set(x[f.name].to_list()) | {UNSEEN})
        else:
            column = x[f.name].to_numpy()
            finite = column[np.isfinite(column)]
            grid = np.unique(np.quantile(finite, np.linspace(0, 1, GRID + 1))) if finite.size else np.array([])
            values = [float(v) for v in grid] + [float("nan")]
        blocks.append((f, values))
        for g in features:
            rows[g.name] += values if g is f else [reference[g.name]] * len(values)
    schema = {f.name: pl.String if f.kind == CATEGORY else pl.Float64 for f in features}
    base = won_probability(pipeline, pl.DataFrame({k: [v] for k, v in reference.items()}, schema=schema))[0]
    deltas = won_probability(pipeline, pl.DataFrame(rows, schema=schema)) - base
    out, start = [], 0
    for f, values in blocks:
        moved = [round(float(d), 4) for d in deltas[start:start + len(values)]]
        start += len(values)
        if f.kind == CATEGORY:
            table = dict(zip(values, moved))
            effects = {"other": table.pop(UNSEEN), "values": table}
        else:
            effects = {"missing": moved[-1], "grid": [[v, d] for v, d in zip(values[:-1], moved[:-1])]}
        out.append(evolve(f, effects=effects))
    return out


# -- cross-validation -----------------------------------------------------------------------------


@frozen
class Split:
    repeat: int
    train: np.ndarray
    test: np.ndarray


def splits(won: np.ndarray, *, folds: int, repeats: int, seed: int, groups=None, times=None):
    """(kind, description, splits): time-ordered when there are dates, group-aware when asked, else
    repeated stratified k-fold. Rows are already deduplicated by the caller."""
    from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedGroupKFold

    if times is not None:
        dated = np.flatnonzero(np.isfinite(times))
        undated = np.flatnonzero(~np.isfinite(times))
        order = dated[np.argsort(times[dated], kind="stable")]
        chunks = np.array_split(order, folds + 1)
        out = [Split(0, np.sort(np.concatenate([*chunks[:k], undated])), np.sort(chunks[k]))
               for k in range(1, folds + 1)]
        return ("time-ordered", f"{folds} expanding-window folds in time order: each fold is tested on the deals "
                f"after those it was trained on ({len(undated)} undated rows are used for training only)", out)
    if groups is not None:
        out = []
        for r in range(repeats):
            cv = StratifiedGroupKFold(folds, shuffle=True, random_state=seed + r)
            out += [Split(r, train, test) for train, test in cv.split(np.zeros(len(won)), won, groups)]
        return ("group-aware", f"{repeats}x{folds}-fold stratified, every group in one fold", out)
    cv = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    out = [Split(i // folds, train, test) for i, (train, test) in enumerate(cv.split(np.zeros(len(won)), won))]
    return "stratified", f"{repeats}x{folds}-fold stratified on distinct rows", out


def metrics(won: np.ndarray, p: np.ndarray) -> dict:
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    both = 0 < won.sum() < len(won)
    return {"roc_auc": float(roc_auc_score(won, p)) if both else None,
            "brier": float(brier_score_loss(won, p)),
            "log_loss": float(log_loss(won, np.clip(p, 1e-6, 1 - 1e-6), labels=[False, True]))}


def summarise(per_fold: list[dict]) -> dict:
    """Mean (and spread) of each metric over the folds."""
    out = {}
    for key in ("roc_auc", "brier", "log_loss"):
        values = [m[key] for m in per_fold if m[key] is not None]
        out[key] = round(float(np.mean(values)), 4) if values else None
        out[key + "_std"] = round(float(np.std(values)), 4) if values else None
    return out


def calibration_table(won: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict]:
    """Predicted against observed, in equal-width bins of predicted probability."""
    index = np.minimum((p * bins).astype(int), bins - 1)
    table = []
    for b in range(bins):
        mask = index == b
        if mask.any():
            table.append({"bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}", "count": int(mask.sum()),
                          "mean_predicted": round(float(p[mask].mean()), 4),
                          "observed": round(float(won[mask].mean()), 4)})
    return table


@frozen
class Evaluation:
    """Metrics as JSON (``summary``) and the pooled predictions behind the plots."""

    summary: dict
    won: np.ndarray
    model: np.ndarray
    scorecard: np.ndarray | None


def blend(model: np.ndarray, scorecard: np.ndarray | None, weight: float) -> np.ndarray:
    return model if scorecard is None else weight * model + (1 - weight) * scorecard


def block(won, p, per_fold) -> dict:
    return {**summarise(per_fold), "calibration": calibration_table(won, p)}


def cross_validate(features: list[Feature], x: pl.DataFrame, won: np.ndarray, scorecard: np.ndarray | None,
                   win_model, *, seed: int, folds: int, repeats: int, prior_rows: float, groups=None,
                   times=None) -> Evaluation:
    """Out-of-fold metrics of the whole training procedure, the scorecard's on the same folds, and the blend."""
    folds = min(folds, minority(won))
    if folds < 2:
        raise DataError("too little history to cross-validate: at least 2 won and 2 lost distinct deals are needed")
    kind, description, plan = splits(won, folds=folds, repeats=repeats, seed=seed, groups=groups, times=times)
    per = {"model": [], "scorecard": [], "blend": []}
    pooled = {"won": [], "model": [], "scorecard": [], "blend": []}
    skipped, weights = 0, []
    for split in plan:
        if minority(won[split.train]) < 2 or len(split.test) == 0:
            skipped += 1
            continue
        pipeline = fit(features, x[split.train], won[split.train], win_model, seed)
        p = won_probability(pipeline, x[split.test])
        y = won[split.test]
        weight = len(split.train) / (len(split.train) + prior_rows)
        weights.append(weight)
        per["model"].append(metrics(y, p))
        pooled["won"].append(y)
        pooled["model"].append(p)
        if scorecard is not None:
            s = scorecard[split.test]
            per["scorecard"].append(metrics(y, s))
            per["blend"].append(metrics(y, blend(p, s, weight)))
            pooled["scorecard"].append(s)
            pooled["blend"].append(blend(p, s, weight))
    if not per["model"]:
        raise DataError("no fold could be evaluated: each needs won and lost deals to train on")
    y_all = np.concatenate(pooled["won"])
    p_all = np.concatenate(pooled["model"])
    s_all = np.concatenate(pooled["scorecard"]) if pooled["scorecard"] else None
    cv = {"kind": kind, "description": description, "folds": folds, "repeats": 1 if times is not None else repeats,
          "seed": seed, "folds_evaluated": len(per["model"]), "folds_skipped": skipped}
    summary = {**block(y_all, p_all, per["model"]), "cv": cv}
    if s_all is not None:
        summary["scorecard"] = block(y_all, s_all, per["scorecard"])
        summary["blend"] = {**block(y_all, np.concatenate(pooled["blend"]), per["blend"]),
                            "prior_rows": prior_rows, "weight": round(float(np.mean(weights)), 4)}
    return Evaluation(summary=summary, won=y_all, model=p_all, scorecard=s_all)


def evaluate_fitted(pipeline, features: list[Feature], x: pl.DataFrame, won: np.ndarray,
                    scorecard: np.ndarray | None, weight: float) -> Evaluation:
    """Metrics of an already trained model on these rows (no refitting)."""
    p = won_probability(pipeline, x)
    summary = {**block(won, p, [metrics(won, p)]),
               "cv": {"kind": "none", "description": "the given model scored these rows as they are: a fair test "
                      "only if they were not in its training data"}}
    if scorecard is not None:
        summary["scorecard"] = block(won, scorecard, [metrics(won, scorecard)])
        summary["blend"] = {**block(won, blend(p, scorecard, weight), [metrics(won, blend(p, scorecard, weight))]),
                            "weight": round(weight, 4)}
    for part in [summary, summary.get("scorecard", {}), summary.get("blend", {})]:
        for key in [k for k in part if k.endswith("_std")]:
            del part[key]
    return Evaluation(summary=summary, won=won, model=p, scorecard=scorecard)
