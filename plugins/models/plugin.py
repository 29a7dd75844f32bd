"""The built-in win model plugin (DESIGN.md §5, docs/win_model.md).

- ``register_win_models``: two calibrated, seeded classifiers for ``kam train``: ``logistic`` and
  ``gradient_boosting``;
- ``register_commands``: ``kam train`` and ``kam evaluate``;
- ``register_config_defaults``: the ``[model]`` section (``kam score --model PATH`` sets its ``path``);
- ``win_probability`` and ``score_columns``: with a model configured, ``win_probability`` becomes the
  blend of the model and the scorecard, beside ``model_probability``, ``scorecard_probability``,
  ``blend_weight`` and the factors raising and lowering each deal's probability. Without a model both
  hooks return ``None`` and the scorecard's own probability applies;
- ``report_run``: the model's file, hash, card and the features the export lacked, for the run summary.

Nothing heavy is imported until a hook needs it, so loading this plugin costs ``kam --help`` nothing.
"""

from __future__ import annotations

from kamcore import hookimpl
from kamcore.registry import WinModel

DEFAULTS = """\
[model]                         # the win model (docs/win_model.md); kam score --model PATH sets `path`
path = ""                       # a model from `kam train` (NAME.joblib, NAME.card.json beside it); "" = none
allow_version_mismatch = false  # load a model trained with another scikit-learn version (it may predict differently)
prior_rows = 50                 # the scorecard counts as this many deals: blend_weight = n / (n + prior_rows)
top_factors = 3                 # how many factors raising and lowering each deal's probability are named
"""


def _configured(config) -> bool:
    return bool(str(config.section("model").get("path") or "").strip())


@hookimpl
def register_config_defaults(register):
    register("model", DEFAULTS)


@hookimpl
def register_win_models(register):
    from .train import build_gradient_boosting, build_logistic

    register(WinModel(name="logistic", build=build_logistic,
                      description="L2-regularised logistic regression (C=0.1), sigmoid-calibrated"))
    register(WinModel(name="gradient_boosting", build=build_gradient_boosting,
                      description="histogram gradient boosting, depth-2 trees, 200 rounds at 0.03, "
                                  "sigmoid-calibrated"))


@hookimpl
def register_commands(cli):
    from .commands import add_commands

    add_commands(cli)


@hookimpl
def score_columns(config, criteria):
    if not _configured(config):
        return None
    import polars as pl

    from .features import scorecard_expression
    from .scoring import scorer_for

    scorer = scorer_for(config)
    scorecard = scorecard_expression(config, criteria)
    return {"model_probability": scorer.model_probability(),
            "scorecard_probability": pl.lit(None, pl.Float64) if scorecard is None else scorecard,
            "blend_weight": pl.lit(scorer.weight, pl.Float64),
            **scorer.factors()}


@hookimpl
def register_column_labels(register, config):
    if not _configured(config):
        return
    from kamcore.registry import ColumnLabel

    register(ColumnLabel("model_probability", "模型赢单概率", "Model's win probability", "0–1"))
    register(ColumnLabel("scorecard_probability", "评分表赢单概率", "Scorecard's win probability", "0–1"))
    register(ColumnLabel("blend_weight", "模型权重", "Model weight",
                         "win_probability = w × model + (1 − w) × scorecard"))
    register(ColumnLabel("factors_raising", "提高概率的因素", "Factors raising it", "中文 / English"))
    register(ColumnLabel("factors_lowering", "降低概率的因素", "Factors lowering it", "中文 / English"))


@hookimpl
def report_run(config, columns):
    if not _configured(config):
        return None
    from .scoring import scorer_for

    return scorer_for(config).report(columns)


@hookimpl
def win_probability(config, criteria):
    if not _configured(config):
        return None
    from .features import scorecard_expression
    from .scoring import scorer_for

    return scorer_for(config).blended(scorecard_expression(config, criteria))
