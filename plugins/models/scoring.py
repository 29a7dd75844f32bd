"""``kam score --model``: the model's probability, the blend with the scorecard, and the factors, in words.

Everything runs inside the streaming query as polars expressions over a struct of the model's feature
columns (``map_batches(..., is_elementwise=True)``, so the engine never holds a whole column). The
columns it adds are separate expressions and polars evaluates each on its own, so one batch's
prediction is computed once and shared through :class:`BatchCache`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import polars as pl
import polars.selectors as cs

from kamcore.errors import ConfigError
from kamcore.schema import CODE, OPPORTUNITY

from .features import CATEGORY, Feature, feature_frame
from .predict import Predictor

log = logging.getLogger("kamcore.models")
MIN_EFFECT = 0.01  # a factor must move the probability by at least one point to be named
PRIOR_ROWS = 50    # the scorecard counts as this many deals of history ([model] prior_rows)


class BatchCache:
    """Compute once per batch, share among the expressions that need it.

    Keyed by the batch's content (a hash of every row), so any expression handed the same rows gets the
    same result; an entry is dropped once all ``consumers`` have read it (at most ``size`` are kept).
    """

    def __init__(self, compute, consumers: int, size: int = 64):
        self.compute, self.consumers, self.size = compute, consumers, size
        self.lock = threading.Lock()
        self.entries: OrderedDict = OrderedDict()

    def get(self, batch: pl.Series):
        key = (batch.len(), hashlib.blake2b(batch.hash(seed=7).to_numpy().tobytes(), digest_size=16).digest())
        with self.lock:
            entry = self.entries.get(key)
            owner = entry is None
            if owner:
                entry = self.entries[key] = {"ready": threading.Event(), "reads": 0}
                while len(self.entries) > self.size:
                    self.entries.popitem(last=False)
        if owner:
            try:
                entry["value"] = self.compute(batch)
            except BaseException as exc:  # re-raised for every reader
                entry["error"] = exc
            finally:
                entry["ready"].set()
        else:
            entry["ready"].wait()
        with self.lock:
            entry["reads"] += 1
            if entry["reads"] >= self.consumers:
                self.entries.pop(key, None)
        if "error" in entry:
            raise entry["error"]
        return entry["value"]


def effect(feature: Feature, frame: pl.DataFrame) -> pl.Expr:
    """The change in P(won) this deal's value of ``feature`` makes to a typical deal (a lookup, no model)."""
    effects = feature.effects or {}
    column = pl.col(feature.name)
    if feature.kind == CATEGORY:  # evaluated on a batch (eager), so replace_strict holds nothing
        table = effects.get("values", {})
        return column.replace_strict(list(table), list(table.values()), default=effects.get("other", 0.0),
                                     return_dtype=pl.Float64)
    grid = effects.get("grid") or []
    if not grid:
        return pl.when(column.is_nan()).then(pl.lit(effects.get("missing", 0.0))).otherwise(pl.lit(0.0))
    expr = pl.when(column.is_nan()).then(pl.lit(effects.get("missing", 0.0)))
    for value, moved in reversed(grid):
        expr = expr.when(column >= value).then(pl.lit(moved))
    return expr.otherwise(pl.lit(grid[0][1]))


def shown(feature: Feature, raw: pl.DataFrame) -> tuple[pl.Expr, pl.Expr]:
    """How the deal's value is written (Chinese, English): codes with their Chinese label, numbers short."""
    name = feature.name
    if name not in raw.columns:
        return pl.lit(None, pl.String), pl.lit(None, pl.String)
    column = pl.col(name)
    dtype = raw.schema[name]
    if dtype.is_numeric():
        text = column.cast(pl.Float64).round(2).cast(pl.String).str.replace(r"\.0$", "")
        return text, text
    text = column.cast(pl.String).str.strip_chars()
    text = pl.when(text != "").then(text)
    spec = OPPORTUNITY.get(name)
    if spec is not None and spec.kind == CODE and spec.vocab:  # a code in Chinese: its label (allocated -> 有)
        return text.replace(list(spec.vocab), [words[0] for words in spec.vocab.values()]), text
    return text, text


class ModelScorer:
    """A loaded model, ready to add its columns to the streaming query."""

    def __init__(self, loaded, *, prior_rows: float, top: int):
        self.pipeline = loaded.pipeline
        self.predictor = Predictor(loaded.pipeline)
        self.card = loaded.card
        self.path = loaded.path
        self.features = [Feature.from_card(f) for f in loaded.card["features"]]
        self.training_rows = int(loaded.card.get("data", {}).get("n_distinct_rows") or 0)
        self.weight = round(self.training_rows / (self.training_rows + prior_rows), 4) if prior_rows > 0 else 1.0
        self.top = top
        self.labels_zh = pl.Series([f.label_zh for f in self.features], dtype=pl.String)
        self.labels_en = pl.Series([f.label_en for f in self.features], dtype=pl.String)
        self.cache = BatchCache(self._compute, consumers=4)  # the two probabilities, the two factor lists
        self.warned = False

    def report(self, columns: list[str]) -> dict:
        """For the run summary: which model scored the rows (its card's hash: the file was checked against it
        before loading) and the features the export lacked."""
        present = set(columns)
        absent = [f.name for f in self.features if f.name not in present]
        card = self.card
        report = {"model": {"path": str(self.path), "name": card.get("name"), "sha256": card.get("sha256"),
                            "format": card.get("format"), "created_at": card.get("created_at"),
                            "classifier": (card.get("classifier") or {}).get("name"),
                            "trained_on_deals": self.training_rows, "blend_weight": self.weight},
                  "features_missing": absent}
        if absent:
            report["notes"] = [f"the model {self.path.name} uses columns this export lacks (treated as missing): "
                               + ", ".join(absent)]
        return report

    # -- the expressions -----------------------------------------------------------------------

    def _inputs(self) -> pl.Expr:
        # by_name(require_all=False): a feature the export lacks is simply absent (and treated as missing);
        # total_score is always there, so the struct is never empty
        return pl.struct(cs.by_name([f.name for f in self.features], require_all=False), pl.col("total_score"))

    def _part(self, name: str, dtype) -> pl.Expr:
        return self._inputs().map_batches(lambda batch: self.cache.get(batch)[name], return_dtype=dtype,
                                          is_elementwise=True)

    def model_probability(self) -> pl.Expr:
        return self._part("model_probability", pl.Float64)

    def factors(self) -> dict[str, pl.Expr]:
        return {"factors_raising": self._part("factors_raising", pl.String),
                "factors_lowering": self._part("factors_lowering", pl.String)}

    def blended(self, scorecard: pl.Expr | None) -> pl.Expr:
        model = self.model_probability()
        if scorecard is None:
            return model
        return pl.when(scorecard.is_null()).then(model).otherwise(
            self.weight * model + (1 - self.weight) * scorecard).round(4)

    # -- one batch -----------------------------------------------------------------------------

    def _compute(self, batch: pl.Series) -> dict[str, pl.Series]:
        raw = batch.struct.unnest()
        absent = [f.name for f in self.features if f.name not in raw.columns]
        if absent and not self.warned:
            self.warned = True
            log.warning("the model %s uses columns this export lacks (treated as missing): %s", self.path.name,
                        ", ".join(absent))
        x = feature_frame(raw, self.features)
        if raw.height == 0:
            empty = pl.Series([], dtype=pl.String)
            return {"model_probability": pl.Series([], dtype=pl.Float64), "factors_raising": empty,
                    "factors_lowering": empty}
        from threadpoolctl import threadpool_limits

        # the streaming engine already runs a batch per core: OpenMP threads inside each predict would
        # oversubscribe the cores and spin-wait (more CPU, no less wall time)
        with threadpool_limits(limits=1, user_api="openmp"):
            p = pl.Series(self.predictor.won(x), dtype=pl.Float64).round(4)
        moved = x.select(effect(f, x).alias(f"d{i}") for i, f in enumerate(self.features)).to_numpy()
        raising, lowering = self._top(moved, raising=True), self._top(moved, raising=False)
        values, at = self._shown(raw, [raising, lowering])
        return {"model_probability": p,
                "factors_raising": self._words(*raising, values, at, raising=True),
                "factors_lowering": self._words(*lowering, values, at, raising=False)}

    def _top(self, moved: np.ndarray, *, raising: bool) -> tuple[np.ndarray, np.ndarray]:
        """(feature index, size of its effect) of each row's ``top`` factors in one direction, largest first."""
        signed = np.nan_to_num(moved if raising else -moved)
        order = np.argsort(-signed, axis=1, kind="stable")[:, : self.top]
        return order, np.take_along_axis(signed, order, axis=1)

    def _shown(self, raw: pl.DataFrame, tops: list[tuple[np.ndarray, np.ndarray]]) -> tuple[dict, np.ndarray]:
        """The values as written (zh, en) of the factors named, and where each (feature, row) sits in them.

        Only the values some row names are turned into words: a few factors of a few dozen per row."""
        n, width = raw.height, len(self.features)
        named = np.zeros((width, n), dtype=bool)
        rows = np.arange(n)
        for order, size in tops:
            for k in range(order.shape[1]):
                ok = size[:, k] >= MIN_EFFECT - 1e-9
                named[order[ok, k], rows[ok]] = True
        at = np.full(width * n, -1, dtype=np.int64)  # feature i, row r -> its place in the values, or -1
        parts = {"zh": [], "en": []}
        count = 0
        for i, feature in enumerate(self.features):
            which = np.flatnonzero(named[i])
            if not which.size:
                continue
            if feature.name in raw.columns:
                subset = raw.select(pl.col(feature.name).gather(which))
                words = subset.select(e.alias(lang) for lang, e in zip(("zh", "en"), shown(feature, subset)))
            else:  # a feature the export lacks: unknown
                words = pl.DataFrame({lang: [None] * which.size for lang in parts}, schema={l: pl.String for l in parts})
            for lang in parts:
                parts[lang].append(words[lang])
            at[i * n + which] = np.arange(count, count + which.size)
            count += which.size
        values = {lang: pl.concat(p) if p else pl.Series([], dtype=pl.String) for lang, p in parts.items()}
        return values, at

    def _words(self, order: np.ndarray, size: np.ndarray, values: dict[str, pl.Series], at: np.ndarray, *,
               raising: bool) -> pl.Series:
        """The ``top`` factors in one direction: ``项目的预算：有（+12%） / budget: allocated (+12%); …``."""
        n = order.shape[0]
        parts = []
        for k in range(order.shape[1]):
            j = pl.Series(order[:, k], dtype=pl.UInt32)
            place = at[order[:, k].astype(np.int64) * n + np.arange(n, dtype=np.int64)]
            where = pl.Series(np.maximum(place, 0), dtype=pl.UInt32)
            frame = pl.DataFrame({"label_zh": self.labels_zh.gather(j), "label_en": self.labels_en.gather(j),
                                  "zh": values["zh"].gather(where) if len(values["zh"]) else None,
                                  "en": values["en"].gather(where) if len(values["en"]) else None,
                                  "points": np.round(size[:, k] * 100).astype(np.int64),
                                  "ok": size[:, k] >= MIN_EFFECT - 1e-9},
                                 schema_overrides={"zh": pl.String, "en": pl.String})
            pct = pl.format("{}{}%", pl.lit("+" if raising else "-"), pl.col("points"))
            text = pl.format("{}：{}（{}） / {}: {} ({})", pl.col("label_zh"), pl.col("zh").fill_null("未知"), pct,
                             pl.col("label_en"), pl.col("en").fill_null("unknown"), pct)
            parts.append(frame.select(pl.when(pl.col("ok")).then(text)).to_series())
        if not parts:
            return pl.Series([None] * n, dtype=pl.String)
        joined = pl.select(pl.concat_str(parts, separator="; ", ignore_nulls=True)).to_series()
        return joined.replace("", None)


_scorers: dict = {}
_lock = threading.Lock()


def prior_rows(config) -> float:
    """``[model] prior_rows``: how many deals of history the scorecard counts as in the blend."""
    value = config.section("model").get("prior_rows", PRIOR_ROWS)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"[model] prior_rows must be a number >= 0, got {value!r}")
    return float(value)


def scorer_for(config) -> ModelScorer | None:
    """The scorer of the model named in ``[model]`` (``kam score --model``), None when no model is configured.
    Loaded once per process and model file (a program or a Dask worker scores run after run); each run that
    asks for it hears of the features its export lacks again."""
    from .store import find_model, load

    settings = config.section("model")
    path = str(settings.get("path") or "").strip()
    if not path:
        return None
    given = Path(path)
    if not given.is_absolute() and config.path is not None and not given.exists() and \
            (Path(config.path).parent / given).exists():
        given = Path(config.path).parent / given  # a path in kam.toml may be relative to kam.toml
    model = find_model(given)
    prior = prior_rows(config)
    top = settings.get("top_factors", 3)
    if isinstance(top, bool) or not isinstance(top, int) or top < 0:
        raise ConfigError(f"[model] top_factors must be a whole number >= 0, got {top!r}")
    allow = bool(settings.get("allow_version_mismatch", False))
    stat = model.stat()
    key = (str(model.resolve()), stat.st_mtime_ns, stat.st_size, prior, top, allow)
    with _lock:
        if key not in _scorers:
            _scorers.clear()  # one model at a time is plenty
            _scorers[key] = ModelScorer(load(model, allow_version_mismatch=allow), prior_rows=prior, top=top)
        scorer = _scorers[key]
        scorer.warned = False  # a run's plan is built (or its report made) from here: the warning is per run
        return scorer
