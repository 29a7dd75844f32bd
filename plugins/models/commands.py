"""``kam train`` and ``kam evaluate``. Only click is imported here: the work is imported when a command runs,
so ``kam --help`` stays fast."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import click

from kamcore.cli import DELIMITER, DELIMITER_HELP

DEFAULT_CLASSIFIER = "gradient_boosting"


def _options(*decorators):
    def apply(function):
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


history_options = _options(
    click.argument("history", nargs=-1, required=True, type=click.Path(path_type=Path, allow_dash=True)),
    click.option("--target", required=True,
                 help="The outcome column: its header in the export, or its canonical name."),
    click.option("--won", required=True, multiple=True, help="The --target value that means won (repeatable)."),
    click.option("--lost", multiple=True,
                 help="The values that mean lost (repeatable). Default: every other non-empty value but those of a "
                      "running deal (进行中, open, in progress …). Rows neither won nor lost are left out as open "
                      "deals."),
    click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
                 help="kam.toml mapping the export, as for kam score (default: $KAM_CONFIG, else ./kam.toml)."),
    click.option("--encoding", default=None, help="Input encoding, when detection is not enough."),
    click.option("--delimiter", type=DELIMITER, default=None, help=DELIMITER_HELP),
)

training_options = _options(
    click.option("--classifier", default=DEFAULT_CLASSIFIER, show_default=True,
                 help="A registered win model: logistic, gradient_boosting, or one a plugin adds."),
    click.option("--points/--no-points", default=True, show_default=True,
                 help="Use the scorecard's criterion points (p1_need …) as features."),
    click.option("--keep", multiple=True, metavar="COLUMN",
                 help="Keep a column flagged as leakage or identifier-like (repeatable)."),
    click.option("--drop", multiple=True, metavar="COLUMN", help="Leave a column out (repeatable)."),
    click.option("--folds", type=click.IntRange(min=2), default=10, show_default=True, help="Cross-validation folds."),
    click.option("--seed", type=int, default=0, show_default=True, help="Seed for the folds and the classifier."),
    click.option("--group", "group_column", default=None, metavar="COLUMN",
                 help="Keep each value of COLUMN (e.g. account) in one fold."),
    click.option("--time", "time_column", default=None, metavar="COLUMN",
                 help="Validate in time order on this date column (default: purchase_date when most rows have "
                      "one)."),
)


class Prepared:
    """The history of one command, read, labelled, with features chosen and copies removed."""

    def __init__(self, *, paths, target, won, lost, config_path, encoding, delimiter, features=None,
                 points=True, keep=(), drop=(), seed=0, group_column=None, time_column=None):
        from kamcore.config import load_config
        from kamcore.plugins import get_kam
        from kamcore.registry import ReadOptions

        from .features import distinct_rows, feature_frame, group_values, load_history, select_features, time_values

        self.kam = get_kam()
        self.config = load_config(config_path, self.kam.config_defaults())
        history = load_history(list(paths), target=target, won=tuple(won), lost=tuple(lost), config=self.config,
                               kam=self.kam, options=ReadOptions(encoding=encoding, delimiter=delimiter,
                                                                 columns=self.config.section("columns")))
        self.history = history
        self.notes = list(history.notes)
        if features is None:
            features, self.dropped, notes = select_features(history, points=points, keep=keep, drop=drop, seed=seed)
            self.notes += notes
        else:
            self.dropped = []
        self.features = features
        x = feature_frame(history.scored, features)
        rows = distinct_rows(x, history.won)
        self.n_rows, self.n_distinct = x.height, len(rows)
        if self.n_distinct < self.n_rows:
            self.notes.append(f"{self.n_rows - self.n_distinct} rows are copies of others (same features and "
                              f"outcome): the {self.n_distinct} distinct rows are used")
        self.x, self.won = x[rows], history.won[rows]
        self.scorecard = history.scorecard[rows] if history.scorecard is not None else None
        groups = group_values(history, group_column)
        self.groups = groups[rows] if groups is not None else None
        times, used = (None, None) if group_column else time_values(history, time_column)
        self.times = times[rows] if times is not None else None
        if used:
            self.notes.append(f"dates in {used}: validation is in time order")

    @property
    def prior_rows(self) -> float:
        from .scoring import prior_rows

        return prior_rows(self.config)

    def win_model(self, name: str):
        from kamcore.errors import ConfigError

        models = self.kam.win_models()
        if name not in models:
            raise ConfigError(f"no win model named {name!r}", hint=f"installed: {', '.join(sorted(models.items))}")
        return models[name]

    def counts(self) -> dict:
        return {"n_rows": self.n_rows, "n_distinct_rows": self.n_distinct, "n_won": int(self.won.sum()),
                "n_lost": int((~self.won).sum())}

    def summary(self, evaluation, *, target, won, lost, classifier) -> dict:
        counts = self.counts()
        out = {"target": target, "won": list(won), "lost": list(lost), "classifier": classifier, **counts,
               **evaluation.summary}
        for part in ("scorecard", "blend"):
            if part in out:
                out[part] = {**out[part], "n_rows": counts["n_rows"], "n_distinct_rows": counts["n_distinct_rows"]}
        return {**out, "features": [f.name for f in self.features], "dropped": self.dropped, "notes": self.notes}


def say(message: str) -> None:
    click.echo(f"kam: {message}", err=True)


def tell(prepared: Prepared) -> None:
    for item in prepared.dropped:
        say(f"note: left out {item['column']}: {item['reason']}")
    for note in prepared.notes:
        say(f"note: {note}")


def command_line(name: str, params: dict, order: list[tuple[str, str]]) -> str:
    """The command as a person would type it, to reproduce the model (recorded in its card)."""
    words = ["kam", name, *[str(p) for p in params["history"]]]
    for key, flag in order:
        value = params.get(key)
        if isinstance(value, tuple):
            for item in value:
                words += [flag, str(item)]
        elif isinstance(value, bool):
            if flag == "--points" and not value:
                words.append("--no-points")
        elif value is not None:
            words += [flag, str(value)]
    return " ".join(shlex.quote(w) for w in words)


def _json_safe(params: dict) -> dict:
    return {k: v for k, v in sorted(params.items()) if isinstance(v, str | int | float | bool) or v is None}


def metrics_text(summary: dict) -> list[str]:
    lines = [f"{'':26s}{'ROC AUC':>16s}{'Brier':>9s}{'log loss':>10s}"]
    for label, part in (("model", summary), ("scorecard (rules)", summary.get("scorecard")),
                        ("blend (win_probability)", summary.get("blend"))):
        if not part:
            continue
        auc = "–" if part.get("roc_auc") is None else f"{part['roc_auc']:.3f}"
        if part.get("roc_auc_std") is not None:
            auc += f" ± {part['roc_auc_std']:.3f}"
        lines.append(f"{label:26s}{auc:>16s}{part['brier']:>9.3f}{part['log_loss']:>10.3f}")
    return lines


def add_commands(cli: click.Group) -> None:
    @cli.command()
    @history_options
    @click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("models/win_model"),
                  show_default=True, help="Where to save: NAME.joblib (or .skops), NAME.card.json, NAME.card.md.")
    @click.option("--format", "fmt", type=click.Choice(["joblib", "skops"]), default="joblib", show_default=True,
                  help="skops: loading builds only allow-listed types and runs no code from the file (needs "
                       "pip install 'kamcore[skops]').")
    @training_options
    @click.option("--repeats", type=click.IntRange(min=0), default=5, show_default=True,
                  help="Cross-validation repeats for the card's metrics (0: no cross-validation).")
    def train(history, target, won, lost, config_path, encoding, delimiter, output, fmt, classifier, points, keep,
              drop, folds, seed, group_column, time_column, repeats):
        """Train a win model on won/lost history and save it with its model card.

        The export is read and scored as by kam score; its columns (canonical ones normalised), the
        criterion points and any other column become features. Identifier-like and constant columns
        are left out, and so is a column that alone predicts the outcome almost perfectly (leakage).
        HISTORY - reads standard input.
        """
        from .features import fingerprint, with_reference
        from .store import save
        from .train import cross_validate, fit, with_effects

        params = click.get_current_context().params
        prepared = Prepared(paths=history, target=target, won=won, lost=lost, config_path=config_path,
                            encoding=encoding, delimiter=delimiter, points=points, keep=keep, drop=drop, seed=seed,
                            group_column=group_column, time_column=time_column)
        tell(prepared)
        win_model = prepared.win_model(classifier)
        metrics = None
        if repeats:
            evaluation = cross_validate(prepared.features, prepared.x, prepared.won, prepared.scorecard, win_model,
                                        seed=seed, folds=folds, repeats=repeats, prior_rows=prepared.prior_rows,
                                        groups=prepared.groups, times=prepared.times)
            metrics = evaluation.summary
        pipeline = fit(prepared.features, prepared.x, prepared.won, win_model, seed)
        features = with_effects(pipeline, with_reference(prepared.features, prepared.x), prepared.x)
        inner = pipeline.named_steps["classifier"].estimator
        command = command_line("train", params, [
            ("target", "--target"), ("won", "--won"), ("lost", "--lost"), ("config_path", "--config"),
            ("encoding", "--encoding"), ("delimiter", "--delimiter"), ("classifier", "--classifier"),
            ("points", "--points"), ("keep", "--keep"), ("drop", "--drop"), ("folds", "--folds"),
            ("repeats", "--repeats"), ("seed", "--seed"), ("group_column", "--group"), ("time_column", "--time"),
            ("fmt", "--format"), ("output", "-o")])
        card = {
            "name": output.name,
            "training": {"command": command, "target": target, "won": list(won), "lost": list(lost),
                         "points": points, "keep": list(keep), "drop": list(drop), "seed": seed,
                         "config": str(config_path) if config_path else None,
                         "config_sha256": prepared.config.sha256},
            "classifier": {"name": classifier, "description": win_model.description,
                           "params": _json_safe(inner.get_params()),
                           "calibration": "sigmoid calibration fitted on 5-fold out-of-fold predictions "
                                          "(CalibratedClassifierCV, ensemble=False)"},
            "classes": [str(c) for c in pipeline.classes_],
            "features": [f.to_card() for f in features],
            "dropped": prepared.dropped,
            "data": {**prepared.counts(), "sha256": fingerprint(prepared.x, prepared.won),
                     "inputs": list(prepared.history.inputs), "notes": prepared.notes},
            "metrics": metrics,
        }
        model, card_json, card_md = save(pipeline, card, output, fmt)
        if metrics:
            score = metrics.get("scorecard", {}).get("roc_auc")
            say(f"cross-validated ({metrics['cv']['description']}): ROC AUC {metrics['roc_auc']:.3f}, Brier "
                f"{metrics['brier']:.3f}" + (f"; scorecard ROC AUC {score:.3f}" if score is not None else ""))
        say(f"trained {classifier} on {prepared.n_distinct} distinct rows ({len(features)} features) -> {model}; "
            f"card: {card_json}, {card_md}")

    @cli.command()
    @history_options
    @click.option("--model", "model_path", type=click.Path(path_type=Path), default=None,
                  help="Evaluate this trained model on the history as it is (no refitting) instead of "
                       "cross-validating a new one.")
    @click.option("--allow-version-mismatch", is_flag=True,
                  help="Load a --model trained with another scikit-learn version.")
    @click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
    @click.option("--report", type=click.Path(path_type=Path), default=None, metavar="FILE.html",
                  help="Write a self-contained HTML page with the ROC and calibration plots.")
    @training_options
    @click.option("--repeats", type=click.IntRange(min=1), default=5, show_default=True,
                  help="Cross-validation repeats.")
    def evaluate(history, target, won, lost, config_path, encoding, delimiter, model_path, allow_version_mismatch,
                 as_json, report, classifier, points, keep, drop, folds, seed, group_column, time_column, repeats):
        """Measure a win model honestly: cross-validated ROC AUC, Brier score, log loss and calibration,
        beside the scorecard's on the same folds.

        Copies of a row are counted once; folds are group-aware with --group and in time order when
        the export has dates. With --model, the trained model is scored on the history instead.
        HISTORY - reads standard input.
        """
        from attrs import evolve

        from .features import Feature
        from .report import page
        from .store import load
        from .train import cross_validate, evaluate_fitted

        options = dict(paths=history, target=target, won=won, lost=lost, config_path=config_path,
                       encoding=encoding, delimiter=delimiter, seed=seed, group_column=group_column,
                       time_column=time_column)
        if model_path is not None:
            loaded = load(model_path, allow_version_mismatch=allow_version_mismatch)
            prepared = Prepared(**options, features=[Feature.from_card(f) for f in loaded.card["features"]])
            trained_rows = int(loaded.card.get("data", {}).get("n_distinct_rows") or 0)
            weight = trained_rows / (trained_rows + prepared.prior_rows) if prepared.prior_rows else 1.0
            evaluation = evaluate_fitted(loaded.pipeline, prepared.features, prepared.x, prepared.won,
                                         prepared.scorecard, weight)
            classifier = loaded.card["classifier"]["name"]
            prepared.notes.append(f"model {loaded.path} (sha256 {loaded.card['sha256'][:12]}…)")
        else:
            prepared = Prepared(**options, points=points, keep=keep, drop=drop)
            evaluation = cross_validate(prepared.features, prepared.x, prepared.won, prepared.scorecard,
                                        prepared.win_model(classifier), seed=seed, folds=folds, repeats=repeats,
                                        prior_rows=prepared.prior_rows, groups=prepared.groups, times=prepared.times)
        summary = prepared.summary(evaluation, target=target, won=won, lost=lost, classifier=classifier)
        if not as_json:
            tell(prepared)
        if report is not None:
            from kamcore.errors import OutputError

            try:
                title = f"Win model evaluation: {', '.join('<stdin>' if str(p) == '-' else p.name for p in history)}"
                report.write_text(page(evolve(evaluation, summary=summary), title), encoding="utf-8")
            except OSError as exc:
                raise OutputError(f"cannot write {report}: {exc.strerror or exc}") from None
        if as_json:
            click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
            return
        click.echo(f"{target} = {' / '.join(won)}: {summary['n_rows']} rows, {summary['n_distinct_rows']} distinct "
                   f"({summary['n_won']} won, {summary['n_lost']} lost); classifier {classifier}")
        click.echo(f"validation: {summary['cv']['description']}")
        for line in metrics_text(summary):
            click.echo(line)
        if report is not None:
            say(f"report: {report}")

