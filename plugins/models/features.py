"""From won/lost history to a feature table: read the exports, label the rows, choose the features.

Features come from the scored frame (:func:`kamcore.score_frame`): the export's columns under their
canonical names where they map onto the schema (normalised: codes, amounts, dates), any other column
as it comes, and each criterion's points. Identifier-like and constant columns are dropped with a
note; a column that alone predicts the outcome almost perfectly is flagged as leakage and left out
unless kept with ``--keep``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl
from attrs import evolve, frozen

from kamcore.config import Config, deep_merge
from kamcore.errors import ConfigError, DataError, InputError
from kamcore.schema import DERIVED_COLUMNS, ID, OPPORTUNITY, OPPORTUNITY_COLUMNS

TARGET = "__kam_target"  # the outcome column while the export is scored: a name no header maps to
MISSING = "<missing>"    # a missing category value, as the encoder sees it
UNSEEN = "<other>"       # a category value the model never saw in training
CATEGORY, NUMBER, DATE, POINTS = "category", "number", "date", "points"
LEAKAGE_AUC = 0.97       # a single column ranking won above lost this well was probably recorded afterwards
ID_SHARE = 0.9           # a text column with this share of distinct values is an identifier or free text

DERIVED_LABELS = {
    "deal_size_base": ("标的（本位币）", "deal size in the base currency"),
    "purchase_date_precision": ("采购时间精度", "purchase date precision"),
    "future_revenue_amount": ("我们的未来销售收入（金额）", "future revenue (amount)"),
    "competitor_count": ("竞争对手数量", "number of competitors"),
}


@frozen
class Feature:
    """One model input: its column in the scored frame, how it is encoded, and how it is named in words.

    ``reference`` is the typical training value (mode or median) and ``effects`` how much each value
    moves the probability of an otherwise typical deal; both are filled in after training.
    """

    name: str
    kind: str
    label_zh: str
    label_en: str
    reference: object = None
    effects: dict | None = None

    def to_card(self) -> dict:
        return {"name": self.name, "kind": self.kind, "label_zh": self.label_zh, "label_en": self.label_en,
                "reference": self.reference, "effects": self.effects}

    @classmethod
    def from_card(cls, data: dict) -> Feature:
        return cls(name=data["name"], kind=data["kind"], label_zh=data.get("label_zh", data["name"]),
                   label_en=data.get("label_en", data["name"]), reference=data.get("reference"),
                   effects=data.get("effects"))


@frozen
class History:
    """Labelled historical deals, scored: one row per deal that is won or lost."""

    scored: pl.DataFrame            # the scored frame (normalised columns, points, scorecard columns)
    won: np.ndarray                 # bool per row
    scorecard: np.ndarray | None    # the scorecard's win probability per row (None without criteria)
    candidates: tuple[str, ...]     # columns that may become features, in the export's order
    points: tuple[str, ...]         # criterion points columns
    labels: dict                    # column -> (label_zh, label_en)
    mapping: dict                   # header as in the export -> column name in the scored frame
    inputs: tuple[dict, ...]        # per file: name, sha256, bytes, rows
    notes: tuple[str, ...]


def training_config(config: Config) -> Config:
    """The config with no model configured: features and the scorecard's probability come from the rules."""
    return Config(data=deep_merge(config.data, {"model": {"path": ""}}), path=config.path)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def find_column(headers: list[str], name: str, config: Config) -> str | None:
    """The header meant by ``name``: as written, as a header kam matches loosely, or by canonical name."""
    from kamcore.headers import header_key, map_headers

    if name in headers:
        return name
    key = header_key(name)
    for header in headers:
        if header_key(header) == key:
            return header
    for header, mapped in map_headers(headers, OPPORTUNITY_COLUMNS, config.section("columns")).items():
        if mapped == name:
            return header
    return None


def read_exports(paths: list[Path], kam, options) -> list[tuple[str, dict, pl.DataFrame]]:
    """Every file through the importers `kam score` uses, as raw text frames, each with its name for messages
    and what identifies it (name, sha256 and size of its bytes as given; ``-``, standard input, is named
    ``<stdin>``)."""
    from kamcore.pipeline import STDIN, collect_source, open_sources, spool_stdin

    with spool_stdin(list(paths)) as spooled:
        opened = open_sources(list(paths), kam, options, stdin=spooled)
        frames = []
        try:
            for path, (source, _) in zip(paths, opened):
                given = spooled if path == STDIN else path
                facts = {"file": source.path.name, "sha256": file_sha256(given), "bytes": given.stat().st_size}
                try:
                    frames.append((str(source.path), facts, collect_source(source)))  # quarantined records left out
                except pl.exceptions.PolarsError as exc:
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    raise InputError(f"{source.path}: cannot read: {first}") from None
        finally:
            for source, _ in opened:
                source.cleanup()
    return frames


def _values_preview(column: pl.Series) -> str:
    counts = column.drop_nulls().value_counts(sort=True).head(8)
    return ", ".join(f"{value!r} ({n})" for value, n in zip(counts[column.name], counts["count"]))


def load_history(paths: list[Path], *, target: str, won: tuple[str, ...], lost: tuple[str, ...], config: Config,
                 kam, options) -> History:
    """Read, label and score the historical deals; rows neither won nor lost (open deals) are left out."""
    import kamcore
    from kamcore.headers import map_headers

    notes: list[str] = []
    frames, inputs, mapping = [], [], {}
    for label, facts, frame in read_exports(paths, kam, options):
        header = find_column(frame.columns, target, config)
        if header is None:
            raise ConfigError(f"{label}: no column {target!r} for --target",
                              hint=f"columns: {', '.join(frame.columns)}")
        frame = frame.rename({header: TARGET})
        mapping.update(map_headers([h for h in frame.columns if h != TARGET], OPPORTUNITY_COLUMNS,
                                   config.section("columns"), source=label))
        inputs.append({**facts, "rows": frame.height})
        frames.append(frame)
    raw = pl.concat(frames, how="diagonal") if len(frames) > 1 else frames[0]

    text = pl.col(TARGET).cast(pl.String).str.strip_chars()
    folded = text.str.to_lowercase()
    is_won = folded.is_in([w.strip().lower() for w in won])
    given = text.is_not_null() & (text != "")
    # without --lost, every other value is lost, but a running deal's status (进行中, open) says it is not over
    running = ["open", *OPPORTUNITY["outcome"].vocab["open"]]
    is_lost = (folded.is_in([v.strip().lower() for v in lost]) if lost
               else given & ~is_won & ~folded.is_in([w.lower() for w in running]))
    flags = raw.select(is_won.alias("won"), is_lost.alias("lost"), given.alias("given"))
    if not flags["won"].any():
        raise ConfigError(f"no row has {target} = {' or '.join(map(repr, won))}",
                          hint=f"the values of {target}: {_values_preview(raw[TARGET])}")
    if not flags["lost"].any():
        raise ConfigError(f"no row of {target} counts as lost", hint=f"the values of {target}: "
                          f"{_values_preview(raw[TARGET])}; name the lost values with --lost")
    open_rows = int((~flags["won"] & ~flags["lost"]).sum())
    if open_rows:
        notes.append(f"{open_rows} rows are neither won nor lost ({target} empty or another value) and were "
                     "left out as open deals")

    criteria = list(kam.criteria(training_config(config)))
    result = kamcore.score_frame(raw, training_config(config), kam=kam)
    scored = result.scored
    if scored.height < raw.height:
        notes.append(f"{raw.height - scored.height} rows could not be read (`kam score` lists their values in its "
                     "rejects file) and were left out")
    label = scored.select(is_won.alias("won"), is_lost.alias("lost"))
    scored = scored.filter(label["won"] | label["lost"])
    y = label.filter(label["won"] | label["lost"])["won"].to_numpy()

    scorecard = None
    expression = scorecard_expression(config, criteria)
    if expression is not None and criteria:
        scorecard = scored.select(expression.cast(pl.Float64)).to_series().fill_null(0.5).to_numpy()
    points = tuple(k.column for k in criteria if k.column in scored.columns)
    produced = (set(mapping.values()) | set(DERIVED_COLUMNS) | {"currency"}) - {"value_flags"}  # notes, not data
    candidates = tuple(c for c in scored.columns if c in produced and c != TARGET)
    labels = {c: column_labels(c, criteria) for c in (*candidates, *points)}
    return History(scored=scored, won=y, scorecard=scorecard, candidates=candidates, points=points, labels=labels,
                   mapping=mapping, inputs=tuple(inputs), notes=tuple(notes))


def scorecard_expression(config: Config, criteria):
    """The built-in scorecard's probability (its documented logistic curve of total_score), if installed."""
    try:
        from kamcore_plugins.scoring.scorecard import win_probability
    except ImportError:  # the scorecard plugin is not installed: no prior to blend with
        return None
    return win_probability(config=config, criteria=criteria)


def column_labels(name: str, criteria) -> tuple[str, str]:
    for k in criteria:
        if k.column == name:
            return f"{k.label_zh}得分", f"{k.label_en} points"
    if name in DERIVED_LABELS:
        return DERIVED_LABELS[name]
    spec = OPPORTUNITY.get(name)
    if spec is not None:
        return spec.label_zh, spec.label_en[:1].lower() + spec.label_en[1:]
    return name, name


def kind_of(series: pl.Series) -> str:
    """category, number or date: numbers and ISO dates written as text (an unknown column) count as such."""
    dtype = series.dtype
    if dtype.is_numeric():
        return NUMBER
    if dtype in (pl.Date, pl.Datetime):
        return DATE
    if dtype == pl.String:
        text = series.str.strip_chars()
        values = text.filter(text.is_not_null() & (text != ""))
        parsed = values.cast(pl.Float64, strict=False)
        if values.len() and parsed.null_count() == 0 and parsed.is_finite().all():
            return NUMBER
        if values.len() and values.str.contains(r"^\d{4}-\d{1,2}-\d{1,2}").all() and \
                values.str.to_date(strict=False).null_count() == 0:
            return DATE
    return CATEGORY


def feature_frame(frame: pl.DataFrame, features: list[Feature]) -> pl.DataFrame:
    """The model's input: categories as trimmed text (missing = ``<missing>``), numbers and dates as floats
    (NaN when missing). A feature the frame lacks is all missing. The same code runs in training and scoring."""
    absent = [f.name for f in features if f.name not in frame.columns]
    if absent:
        frame = frame.with_columns(pl.lit(None, pl.String).alias(name) for name in absent)
    exprs = []
    for f in features:
        column, dtype = pl.col(f.name), frame.schema[f.name]
        if f.kind == CATEGORY:
            text = column.cast(pl.String).str.strip_chars()
            exprs.append(pl.when(text.is_null() | (text == "")).then(pl.lit(MISSING)).otherwise(text).alias(f.name))
            continue
        if f.kind == DATE:
            date = column.str.to_date(strict=False) if dtype == pl.String else column.cast(pl.Date, strict=False)
            number = date.cast(pl.Int32)  # days since 1970-01-01
        else:
            number = column.str.strip_chars() if dtype == pl.String else column
        exprs.append(number.cast(pl.Float64, strict=False).fill_null(float("nan")).alias(f.name))
    return frame.select(exprs)


def identifier_like(name: str, series: pl.Series, kind: str) -> str | None:
    spec = OPPORTUNITY.get(name)
    if spec is not None and spec.kind == ID:
        return "identifier: the opportunity id"
    values = series.drop_nulls()
    if kind == CATEGORY:
        values = values.cast(pl.String).str.strip_chars()
        values = values.filter(values != "")
    n = values.len()
    if n < 5:
        return None
    distinct = values.n_unique()
    if kind == CATEGORY and distinct >= ID_SHARE * n:
        return f"identifier-like or free text: {distinct} distinct values in {n} rows"
    if kind == NUMBER and distinct == n:
        numbers = values.cast(pl.Float64, strict=False).sort()
        if (numbers.round(0) == numbers).all() and (numbers.diff().drop_nulls() == 1).all():
            return "identifier-like: a running number"
    return None


def single_column_auc(x: pl.Series, y: np.ndarray, kind: str, seed: int) -> float | None:
    """How well one column alone ranks won above lost (0.5 = not at all, 1 = perfectly), out of fold for
    categories (a category's win rate learnt on the other folds), so a many-valued column earns nothing."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    minority = int(min(y.sum(), (~y).sum()))
    if minority < 2:
        return None
    if kind == CATEGORY:
        encoded = np.empty(len(y))
        folds = StratifiedKFold(min(5, minority), shuffle=True, random_state=seed)
        for train, test in folds.split(np.zeros(len(y)), y):
            rates = pl.DataFrame({"v": x.gather(train), "y": y[train]}).group_by("v").agg(pl.col("y").mean())
            encoded[test] = x.gather(test).replace_strict(rates["v"], rates["y"], default=float(y[train].mean()),
                                                          return_dtype=pl.Float64).to_numpy()
    else:
        values = x.to_numpy().astype(float)
        finite = values[np.isfinite(values)]
        encoded = np.where(np.isfinite(values), values, (finite.min() - 1) if finite.size else 0.0)
    auc = float(roc_auc_score(y, encoded))
    return max(auc, 1 - auc)


def select_features(history: History, *, points: bool, keep: tuple[str, ...] = (), drop: tuple[str, ...] = (),
                    seed: int = 0) -> tuple[list[Feature], list[dict], list[str]]:
    """The features, the dropped columns with their reason, and notes."""
    keep_set = {resolve(history, name, "--keep") for name in keep}
    drop_set = {resolve(history, name, "--drop") for name in drop}
    scored, y = history.scored, history.won
    features: list[Feature] = []
    dropped: list[dict] = []
    notes: list[str] = []
    columns = list(history.candidates) + (list(history.points) if points else [])
    for name in columns:
        if name in drop_set:
            dropped.append({"column": name, "reason": "left out with --drop"})
            continue
        kind = POINTS if name in history.points else kind_of(scored[name])
        feature = Feature(name, kind, *history.labels[name])
        prepared = feature_frame(scored.select(name), [feature])[name]
        if prepared.n_unique() <= 1:
            dropped.append({"column": name, "reason": "constant: the same value in every row"})
            continue
        why = None if kind == POINTS else identifier_like(name, scored[name], kind)
        if why and name not in keep_set:
            dropped.append({"column": name, "reason": why})
            continue
        auc = single_column_auc(prepared, y, CATEGORY if kind == CATEGORY else NUMBER, seed)
        if auc is not None and auc >= LEAKAGE_AUC:
            reason = (f"leakage: alone it predicts the outcome almost perfectly (AUC {auc:.3f}); it was probably "
                      "recorded after the outcome")
            if name not in keep_set:
                dropped.append({"column": name, "reason": reason + "; keep it with --keep " + name})
                continue
            notes.append(f"{name}: {reason}; kept because of --keep")
        features.append(feature)
    if not features:
        raise DataError("no usable feature: every column was dropped",
                        hint="; ".join(f"{d['column']}: {d['reason']}" for d in dropped[:6]) or "the export is empty")
    return features, dropped, notes


def resolve(history: History, name: str, option: str) -> str:
    """A column named on the command line, as in the export or by its canonical name."""
    columns = set(history.candidates) | set(history.points)
    if name in columns:
        return name
    mapped = history.mapping.get(name)
    if mapped in columns:
        return mapped
    from kamcore.headers import header_key

    for header, column in history.mapping.items():
        if header_key(header) == header_key(name) and column in columns:
            return column
    raise ConfigError(f"{option} {name}: no such column", hint=f"columns: {', '.join(sorted(columns))}")


def distinct_rows(x: pl.DataFrame, y: np.ndarray) -> np.ndarray:
    """Indexes of the first copy of every distinct (features, outcome) row, in order."""
    frame = x.with_columns(pl.Series("__won", y)).with_row_index("__i")
    return frame.unique(subset=[c for c in frame.columns if c != "__i"], keep="first",
                        maintain_order=True)["__i"].to_numpy()


def fingerprint(x: pl.DataFrame, y: np.ndarray) -> str:
    """sha256 of the training table (features and outcome, as CSV): the data the model learnt from."""
    return hashlib.sha256(x.with_columns(pl.Series("__won", y)).write_csv().encode()).hexdigest()


def time_values(history: History, column: str | None) -> tuple[np.ndarray | None, str | None]:
    """Days since 1970 per row for a time-ordered split: ``--time COLUMN``, else ``purchase_date`` when at
    least half the rows have one."""
    scored = history.scored
    given = column is not None
    if not given:
        if "purchase_date" not in scored.columns or scored["purchase_date"].null_count() > scored.height / 2:
            return None, None
        column = "purchase_date"
    else:
        column = resolve(history, column, "--time")
    days = feature_frame(scored, [Feature(column, DATE, column, column)])[column].to_numpy()
    if np.isfinite(days).sum() < 4:
        if not given:
            return None, None
        raise ConfigError(f"--time {column}: fewer than 4 rows have a date")
    return days, column


def group_values(history: History, column: str | None) -> np.ndarray | None:
    if column is None:
        return None
    name = resolve(history, column, "--group")
    row = pl.format("<row {}>", pl.int_range(pl.len()))  # a missing group is a group of its own row
    return history.scored.select(pl.coalesce(pl.col(name).cast(pl.String), row)).to_series().to_numpy()


def with_reference(features: list[Feature], x: pl.DataFrame) -> list[Feature]:
    """Each feature's typical value in training: the most frequent category, the median number."""
    out = []
    for f in features:
        column = x[f.name]
        if f.kind == CATEGORY:
            counts = column.value_counts().sort(["count", f.name], descending=[True, False])
            reference = counts[f.name][0]
        else:
            values = column.to_numpy()
            finite = values[np.isfinite(values)]
            reference = float(np.median(finite)) if finite.size else None
        out.append(evolve(f, reference=reference))
    return out

