"""The scoring stage: qualification, criteria points, block scores and plugin score columns, as one
expression plan.

The core knows no criterion by name: it adds up whatever criteria the plugins registered, block by
block. A criterion's points are ``null`` when its inputs are unknown; an unknown criterion earns no
points, is counted in ``unknown_criteria``, and the scorecard's reasons say so.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from .errors import PluginError
from .registry import BLOCKS, Criterion

c = pl.col
SCORE_COLUMNS = ("total_score", "unknown_criteria")
# ``kam score --scores-only``: plugin score columns kept beside the points, block scores and probability
# (codes a CRM can join on; the words, such as ``reasons``, are left to the full output)
SCORES_ONLY_EXTRA = ("band", "quadrant")


class ScoringPlan:
    """Everything the plugins contribute to scoring, gathered once per run."""

    def __init__(self, kam, config, scores_only: bool = False):
        self.kam = kam
        self.config = config
        self.scores_only = scores_only
        self.criteria: list[Criterion] = sorted(kam.criteria(config), key=lambda k: (k.number is None, k.number or 0,
                                                                                      k.name))
        self.blocks = [b for b in BLOCKS if any(k.block == b for k in self.criteria)]
        self.extra = kam.score_columns(config, self.criteria)
        self.extra_names = list(self.extra)  # every plugin score column, written or not
        if scores_only:  # columns not written are not computed
            self.extra = {n: e for n, e in self.extra.items() if n in SCORES_ONLY_EXTRA}
        self.probability_plugin, self.probability = kam.win_probability(config, self.criteria)
        self.batch_hooks = [h for h in ("qualify", "score") if kam.has_impls(h)]
        self.errors: list[BaseException] = []  # exceptions raised by plugins inside the streaming engine
        self.batch_columns: list[str] = []  # columns the qualify and score hooks added
        # the qualify_columns steps and the columns they add, per set of batch columns
        self.qualification_steps: dict[frozenset[str], tuple[list[dict], list[str]]] = {}
        self.qualify_columns: list[str] = []  # columns the qualify_columns expressions added
        self.missing_inputs: list[str] = []  # criterion inputs the export lacks (scored unknown)
        self.input_columns: list[str] = []  # the columns of the frame scoring was given (for report_run)

    @property
    def inputs(self) -> set[str]:
        return {name for k in self.criteria for name in k.inputs}

    def expressions(self) -> list[pl.Expr]:
        """Every expression the plan evaluates on the frame (to find the columns it reads)."""
        exprs = [k.points for k in self.criteria] + list(self.extra.values())
        return exprs + ([self.probability] if self.probability is not None else [])

    def output_columns(self) -> list[str]:
        names = [k.column for k in self.criteria] + [f"{b}_score" for b in self.blocks] + list(SCORE_COLUMNS)
        names += list(self.extra)
        if self.probability is not None:
            names.append("win_probability")
        return names + ([] if self.scores_only else self.qualify_columns + self.batch_columns)

    def kept_columns(self, available: set[str]) -> set[str] | None:
        """Scores only: the columns the written expressions read, or None to keep every column (when they read
        one that neither ``available`` nor the scoring gives, it comes from qualification, whose inputs are
        known only once the batch's columns are)."""
        read = read_columns(self.expressions())
        if read is None or read - (set(available) | self.inputs | set(self.output_columns())):
            return None
        return read

    def on_frame(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        """Add every score column to a frame of normalised canonical columns."""
        schema = frame.collect_schema()
        missing = sorted(self.inputs - set(schema.names()))
        self.input_columns = schema.names()
        clash = set(schema.names()) & set(self.output_columns())
        if clash:
            raise PluginError(f"input columns {sorted(clash)} clash with score columns of the same name",
                              hint="rename them in the export or map them in [columns] of kam.toml")
        self.missing_inputs = missing
        if missing:  # criteria whose input column the export lacks are unknown, not an error
            frame = frame.with_columns(pl.lit(None, pl.String).alias(name) for name in missing)
        frame = self._qualify(frame)
        # integer points (the built-in scorecard's 0 to 3) stay integers; any other points are Float64
        given = frame.select(k.points.alias(k.column) for k in self.criteria).collect_schema()
        frame = frame.with_columns(k.points.cast(pl.Int32 if given[k.column].is_integer() else pl.Float64)
                                   .alias(k.column) for k in self.criteria)
        frame = frame.with_columns(
            *[self._block(b) for b in self.blocks],
            self._percent(self.criteria).alias("total_score"),
            pl.sum_horizontal([c(k.column).is_null() for k in self.criteria] or [pl.lit(0)])
            .cast(pl.Int32).alias("unknown_criteria"),
        )
        if self.extra or self.probability is not None:
            exprs = [e.alias(n) for n, e in self.extra.items()]
            if self.probability is not None:
                exprs.append(self.probability.cast(pl.Float64).alias("win_probability"))
            frame = frame.with_columns(exprs)
        if "score" in self.batch_hooks:
            frame = self._batch_hook(frame, "score")
        if self.scores_only:
            return frame.select(["opportunity_id"] + self.output_columns())
        return frame.drop(missing) if missing else frame

    def _qualify(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        """The qualification columns: the ``qualify_columns`` expressions step by step, then the ``qualify``
        batch hook (which sees them). Scores only: left out when nothing written reads them."""
        steps, added = self._qualification(frozenset(frame.collect_schema().names()))
        qualified = frame
        for step in steps:
            qualified = qualified.with_columns(expr.alias(name) for name, expr in step.items())
        temporary = [name for step in steps for name in step if name.startswith("__")]
        if temporary:
            qualified = qualified.drop(temporary)
        hooked = self._batch_hook(qualified, "qualify") if "qualify" in self.batch_hooks else qualified
        if self.scores_only and hooked is qualified:  # the batch hook, which could read them, does not run
            read = read_columns(self.expressions())
            if read is not None and not set(added) & read:
                return frame
        self.qualify_columns = added
        return hooked

    def _qualification(self, columns: frozenset[str]) -> tuple[list[dict], list[str]]:
        """(steps, columns added) of the ``qualify_columns`` hook for a batch with ``columns``, asked once."""
        if columns not in self.qualification_steps:
            steps, owners = self.kam.qualify_columns(self.config, columns)
            added = [name for step in steps for name in step if not name.startswith("__")]
            scores = ({k.column for k in self.criteria} | {f"{b}_score" for b in BLOCKS} | set(SCORE_COLUMNS)
                      | set(self.extra_names) | {"win_probability"})
            for name in added:
                if name in scores:
                    raise PluginError(f"plugin {owners[name]!r} returned column {name!r} from qualify_columns, "
                                      "which is a score column", hint="give the column another name")
            self.qualification_steps[columns] = (steps, added)
        return self.qualification_steps[columns]

    def _block(self, block: str) -> pl.Expr:
        return self._percent([k for k in self.criteria if k.block == block]).alias(f"{block}_score")

    @staticmethod
    def _percent(criteria: list[Criterion]) -> pl.Expr:
        """100 × weighted points / weighted maximum; unknown criteria earn nothing."""
        top = sum(k.weight * k.max_points for k in criteria)
        if not criteria or top == 0:
            return pl.lit(None, pl.Float64)
        got = pl.sum_horizontal([c(k.column).fill_null(0) * k.weight for k in criteria])
        return (100 * got / top).round(1)

    def _batch_hook(self, frame: pl.LazyFrame, hook: str) -> pl.LazyFrame:
        """Run a Python batch hook inside the streaming query; its new columns are merged, clashes refused."""
        call: Callable = getattr(self.kam, hook)
        config = self.config
        errors = self.errors
        probe = frame.head(0).collect()
        added = merge_new_columns(probe, call(probe, config), hook)
        read = read_columns(self.expressions()) if self.scores_only else None
        if read is not None and not set(added.columns) & read:
            return frame  # scores only, and nothing written reads its columns: the hook is not run
        schema = {**probe.schema, **added.schema}
        self.batch_columns += [name for name in added.columns if name not in self.batch_columns]

        def run(batch: pl.DataFrame) -> pl.DataFrame:
            try:
                results = call(batch, config)
                new = merge_new_columns(batch, results, hook)
                if new.schema != added.schema:
                    plugins = ", ".join(repr(p) for p, _ in results) or "none"
                    raise PluginError(f"{hook} returned columns {dict(new.schema)} for a batch but "
                                      f"{dict(added.schema)} for the empty probe batch (plugins: {plugins})",
                                      hint="return the same columns and types for every batch, even an empty one")
                return pl.concat([batch, new], how="horizontal")
            except BaseException as exc:  # kept so the core can re-raise it unwrapped
                errors.append(exc)
                raise

        return frame.map_batches(run, schema=schema, streamable=True)


def read_columns(expressions: list[pl.Expr]) -> set[str] | None:
    """The columns ``expressions`` read, from their serialised trees (named columns and selectors by
    name); None when one reads columns it does not name (a regex, a dtype selector, ``pl.all()``)."""
    import json
    import warnings

    names: set[str] = set()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stack: list = [json.loads(e.meta.serialize(format="json")) for e in expressions]
    except Exception:  # an expression polars cannot serialise: keep every column
        return None
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key == "Column" and isinstance(value, str):
                    names.add(value)
                elif key == "Columns" and isinstance(value, list):
                    names.update(str(v) for v in value)
                elif key == "Selector":
                    by_name = value.get("ByName") if isinstance(value, dict) else None
                    if not isinstance(by_name, dict) or not isinstance(by_name.get("names"), list):
                        return None
                    names.update(str(v) for v in by_name["names"])
                elif key in ("Wildcard", "Nth", "DtypeColumn", "IndexColumn", "Regex"):
                    return None
                else:
                    stack.append(value)
    return names


def merge_new_columns(batch: pl.DataFrame, results: list[tuple[str, object]], hook: str) -> pl.DataFrame:
    """Check and join the new columns plugins returned for one batch."""
    owners: dict[str, str] = {}
    parts = []
    for plugin, frame in results:
        if isinstance(frame, pl.Series):
            frame = frame.to_frame()
        if not isinstance(frame, pl.DataFrame):
            raise PluginError(f"plugin {plugin!r} returned {type(frame).__name__} from {hook}, expected a polars "
                              "DataFrame of new columns")
        if frame.height != batch.height:
            raise PluginError(f"plugin {plugin!r} returned {frame.height} rows from {hook} for a batch of "
                              f"{batch.height}")
        for name in frame.columns:
            if name in batch.columns:
                raise PluginError(f"plugin {plugin!r} returned column {name!r} from {hook}, which the batch "
                                  "already has")
            if name in owners:
                raise PluginError(f"column {name!r} is returned by plugin {owners[name]!r} and by plugin {plugin!r} "
                                  f"from {hook}")
            owners[name] = plugin
        parts.append(frame)
    return pl.concat(parts, how="horizontal") if parts else pl.DataFrame()
