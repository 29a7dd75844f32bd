"""P(won) for a batch, computed faster than ``pipeline.predict_proba`` and to the same numbers.

Two things make the bare call slow on export-sized batches, and both are avoided here:

- the ``ColumnTransformer`` hands each text column to its ``OneHotEncoder`` as an array of Python
  strings; a batch of 10,000 deals has a few dozen distinct values per column, so each encoder here
  sees only the distinct values and its rows are gathered back by index (transforms are row-wise);
- the trees of a gradient-boosting model read the encoded matrix one feature at a time, which in a
  row-major matrix of a few hundred columns is a cache miss per node; the matrix is built
  column-major (Fortran order) instead, about 4x faster for ``HistGradientBoostingClassifier``.

The first batch (and any shorter one before a batch of ``CHECK_ROWS``) is also encoded the plain way and
the two matrices must be equal; if they are not (a pipeline shape this module does not know, a
transformer that is not row-wise), every batch takes the plain path.
"""

from __future__ import annotations

import logging
import threading

import numpy as np
import polars as pl

from .train import WON

log = logging.getLogger("kamcore.models")
CHECK_ROWS = 100  # batches are checked until one this long has been (a tiny first batch proves little)


class Predictor:
    """``won(x)`` -> P(won) per row of a feature frame (:func:`..features.feature_frame`)."""

    def __init__(self, pipeline):
        self.pipeline = pipeline
        self.column = [str(c) for c in pipeline.classes_].index(WON)
        encoder, self.rest = split_pipeline(pipeline)
        self.plain_encoder = encoder
        self.encoder = Encoder(encoder) if encoder is not None else None
        self.checked = self.encoder is None  # nothing to check without the fast path
        self.lock = threading.Lock()

    def won(self, x: pl.DataFrame) -> np.ndarray:
        if self.encoder is None:
            return self.pipeline.predict_proba(x)[:, self.column]
        if not self.checked:
            with self.lock:
                if not self.checked:
                    self._check(x)
                    self.checked = self.encoder is None or x.height >= CHECK_ROWS
        if self.encoder is None:
            return self.pipeline.predict_proba(x)[:, self.column]
        xt = self.encoder.transform(x)
        for step in self.rest[:-1]:
            xt = step.transform(xt)
        return self.rest[-1].predict_proba(xt)[:, self.column]

    def _check(self, x: pl.DataFrame) -> None:
        """The fast encoding must equal the ColumnTransformer's own, on real rows, or it is not used."""
        try:
            plain = self.plain_encoder.transform(x)
            fast = self.encoder.transform(x)
            same = isinstance(plain, np.ndarray) and plain.shape == fast.shape and np.array_equal(plain, fast,
                                                                                                 equal_nan=True)
        except Exception as exc:  # an unexpected shape: the plain path handles it (or fails with its own error)
            log.debug("fast encoding not used: %s: %s", type(exc).__name__, exc)
            same = False
        if not same:
            self.encoder = None


def split_pipeline(pipeline):
    """(the leading ColumnTransformer, the remaining steps) of a Pipeline; (None, None) for anything else."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) < 2:
        return None, None
    first = pipeline.steps[0][1]
    rest = [step for _, step in pipeline.steps[1:]]
    if not isinstance(first, ColumnTransformer) or any(s is None or s == "passthrough" for s in rest):
        return None, None
    if any(t == "passthrough" for _, t, _ in first.transformers_):
        return None, None
    return first, rest


class Encoder:
    """The ColumnTransformer's output for a batch, column-major.

    A one-column encoder of text sees each distinct value once per run: its encoded rows are kept (up
    to ``limit`` values per column) and gathered by index, so a batch costs a lookup, not a transform.
    """

    def __init__(self, transformer, limit: int = 100_000):
        self.transformer = transformer
        self.limit = limit
        self.lock = threading.Lock()
        self.known: dict[int, tuple] = {}  # entry -> (distinct values, their encoded rows, their Enum)
        self.numeric = {entry: f for entry, (_, t, _) in enumerate(transformer.transformers_)
                        if (f := impute_and_scale(t)) is not None}

    def transform(self, x: pl.DataFrame) -> np.ndarray:
        blocks = []
        for entry, (_, transformer, columns) in enumerate(self.transformer.transformers_):
            if isinstance(transformer, str):  # "drop" (the remainder, or a dropped feature)
                continue
            names = [columns] if isinstance(columns, str) else list(columns)
            if not names:
                continue
            series = x.get_column(names[0]) if len(names) == 1 else None
            if series is not None and series.dtype == pl.String and series.null_count() == 0 and len(series):
                blocks.append(self._lookup(entry, transformer, series))
            elif series is not None and series.dtype == pl.Float64 and entry in self.numeric:
                blocks.append((self.numeric[entry](series.to_numpy()), None))
            else:
                blocks.append((np.asarray(transformer.transform(x.select(names))), None))
        width = sum(b.shape[1] for b, _ in blocks)
        dtype = np.result_type(*[b.dtype for b, _ in blocks]) if blocks else np.float64
        out = np.empty((x.height, width), dtype=dtype, order="F")
        at = 0
        for block, index in blocks:
            for j in range(block.shape[1]):  # one contiguous column at a time
                out[:, at + j] = block[:, j] if index is None else block[:, j].take(index)
            at += block.shape[1]
        return out

    def _lookup(self, entry: int, transformer, series: pl.Series) -> tuple[np.ndarray, np.ndarray]:
        """(encoded rows of the known values, each row's index into them), new values encoded first."""
        known = self.known.get(entry)  # one tuple, replaced whole: safe to read without the lock
        if known is not None:
            index = series.cast(known[2], strict=False).to_physical()
            if not index.null_count():
                return known[1], index.to_numpy()
        with self.lock:  # another batch may have added values meanwhile
            known = self.known.get(entry)
            distinct = series.unique(maintain_order=True)
            new = distinct if known is None else distinct.filter(distinct.cast(known[2], strict=False).is_null())
            if known is None or len(known[0]) + len(new) > self.limit:  # start over with this batch's values
                values, rows = distinct, np.asarray(transformer.transform(distinct.to_frame()))
            elif len(new):
                values = pl.concat([known[0], new])
                rows = np.vstack([known[1], transformer.transform(new.to_frame())])
            else:
                values, rows = known[0], known[1]
            known = self.known[entry] = (values, rows, pl.Enum(values))
        return known[1], series.cast(known[2]).to_physical().to_numpy()


def impute_and_scale(transformer):
    """``SimpleImputer`` then ``StandardScaler`` on one number column, as numpy arithmetic in the order
    scikit-learn does it (fill, add the missing indicator, subtract the mean, divide by the scale);
    None for any other transformer. Each one costs a millisecond of checks per call in scikit-learn."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if not isinstance(transformer, Pipeline) or len(transformer.steps) != 2:
        return None
    imputer, scaler = (step for _, step in transformer.steps)
    if type(imputer) is not SimpleImputer or type(scaler) is not StandardScaler:
        return None
    missing_is_nan = isinstance(imputer.missing_values, float) and np.isnan(imputer.missing_values)
    if not missing_is_nan or len(imputer.statistics_) != 1:
        return None
    fill = imputer.statistics_[0]
    indicator = imputer.indicator_ is not None and len(imputer.indicator_.features_) == 1

    def apply(values: np.ndarray) -> np.ndarray:
        values = values.astype(np.float64)
        missing = np.isnan(values)
        values[missing] = fill
        out = np.column_stack([values, missing.astype(np.float64)] if indicator else [values])
        if scaler.with_mean:
            out -= scaler.mean_
        if scaler.with_std:
            out /= scaler.scale_
        return out

    return apply
