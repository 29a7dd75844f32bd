"""Fast prediction (kamcore_plugins.models.predict) gives the numbers ``pipeline.predict_proba`` gives.

Real models: the shipped Bohanec model (gradient boosting) and a logistic model trained here, on the
Bohanec rows scored by kam. Batches are cut so that later ones bring values the first never saw.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers import invoke, kam_env  # noqa: E402,F401

import kamcore  # noqa: E402
from kamcore_plugins.models.features import CATEGORY, Feature, feature_frame  # noqa: E402
from kamcore_plugins.models.predict import Encoder, Predictor, split_pipeline  # noqa: E402
from kamcore_plugins.models.store import load  # noqa: E402
from kamcore_plugins.models.train import WON  # noqa: E402

pytestmark = pytest.mark.usefixtures("kam_env")

ROOT = Path(__file__).resolve().parent.parent
BOHANEC = ROOT / "examples" / "bohanec" / "Salvirt_B2B_ML_dataset.csv"
BOHANEC_TOML = ROOT / "examples" / "bohanec" / "kam.toml"
SHIPPED = ROOT / "models" / "bohanec.joblib"


def bare(pipeline, x: pl.DataFrame) -> np.ndarray:
    return pipeline.predict_proba(x)[:, [str(c) for c in pipeline.classes_].index(WON)]


@pytest.fixture(scope="module")
def features_of():
    """The model's feature frame for every Bohanec row, scored by kam under the example's kam.toml."""
    raw = pl.read_csv(BOHANEC, separator=";", infer_schema=False)
    scored = kamcore.score_frame(raw, config=str(BOHANEC_TOML)).scored

    def build(model) -> pl.DataFrame:
        return feature_frame(scored, [Feature.from_card(f) for f in model.card["features"]])

    return build


@pytest.fixture(scope="module")
def logistic(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("logistic")
    result = invoke("train", BOHANEC, "--config", BOHANEC_TOML, "--target", "Status", "--won", "Won",
                    "--classifier", "logistic", "-o", folder / "logistic", "--repeats", "0")
    assert result.exit_code == 0, result.output
    return folder / "logistic.joblib"


def batches_with_late_values(x: pl.DataFrame, column: str) -> list[pl.DataFrame]:
    """The rows cut into batches of uneven size; the rows of one value of ``column`` come last, so the
    encoder's cache meets that value only in the final batches."""
    late = x[column].value_counts(sort=True)[column][-1]
    ordered = pl.concat([x.filter(pl.col(column) != late), x.filter(pl.col(column) == late)])
    cuts = [0, 7, 100, 101, 350, ordered.height - 3, ordered.height]
    return [ordered.slice(a, b - a) for a, b in zip(cuts, cuts[1:]) if b > a]


def test_the_shipped_model_predicts_exactly_as_predict_proba_batch_after_batch(features_of):
    model = load(SHIPPED)
    x = features_of(model)
    predictor = Predictor(model.pipeline)
    column = next(f["name"] for f in model.card["features"] if f["kind"] == CATEGORY)
    for batch in batches_with_late_values(x, column):
        assert np.array_equal(predictor.won(batch), bare(model.pipeline, batch))
    assert predictor.encoder is not None, "the fast path was checked and kept"
    assert predictor.encoder.known, "text columns were encoded once per distinct value"


def test_a_logistic_model_predicts_as_predict_proba(features_of, logistic):
    model = load(logistic)
    x = features_of(model)
    predictor = Predictor(model.pipeline)
    got, want = predictor.won(x), bare(model.pipeline, x)
    assert predictor.encoder is not None
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)  # a matrix product may round in another order


def test_batches_from_several_threads_share_the_cache_safely(features_of):
    model = load(SHIPPED)
    x = features_of(model)
    predictor = Predictor(model.pipeline)
    pieces = [x.slice(i, 37) for i in range(0, x.height, 37)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(predictor.won, pieces))
    assert np.array_equal(np.concatenate(results), bare(model.pipeline, x))


def test_a_small_cache_starts_over_and_stays_exact(features_of):
    model = load(SHIPPED)
    x = features_of(model)
    encoder, _ = split_pipeline(model.pipeline)
    small = Encoder(encoder, limit=2)
    for batch in (x.slice(0, 60), x.slice(60, 200), x.slice(0, 60)):
        assert np.array_equal(small.transform(batch), encoder.transform(batch))
    assert np.asfortranarray(small.transform(x)).flags["F_CONTIGUOUS"]


def test_a_transformer_that_is_not_row_wise_is_caught_and_the_plain_path_used():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    def share_of_batch(frame):  # each row's value as a share of its batch: depends on the other rows
        values = frame.to_series().to_list()
        return np.array([[values.count(v) / len(values)] for v in values])

    x = pl.DataFrame({"region": ["n", "n", "s", "w", "n", "s"] * 5})
    y = np.array(["won", "lost", "won", "lost", "lost", "won"] * 5)
    pipeline = Pipeline([("features", ColumnTransformer([("f0", FunctionTransformer(share_of_batch), ["region"])])),
                         ("classifier", LogisticRegression())]).fit(x, y)
    predictor = Predictor(pipeline)
    assert np.array_equal(predictor.won(x), bare(pipeline, x))
    assert predictor.encoder is None, "the distinct-value encoding differs here, so it was dropped"


def test_pipelines_of_other_shapes_predict_as_predict_proba():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    x = pl.DataFrame({"region": ["n", "s", "w"] * 10, "size": [1.0, 2.0, 3.5] * 10})
    y = np.array(["won", "lost", "won"] * 10)
    passthrough = Pipeline([("features", ColumnTransformer([("f0", OneHotEncoder(), ["region"])],
                                                           remainder="passthrough")),
                            ("classifier", LogisticRegression())]).fit(x, y)
    bare_estimator = LogisticRegression().fit(x.select("size").to_numpy(), y)
    assert split_pipeline(bare_estimator) == (None, None)
    np.testing.assert_allclose(Predictor(passthrough).won(x), bare(passthrough, x), rtol=0, atol=1e-12)
    sizes = x.select("size").to_numpy()
    assert np.array_equal(Predictor(bare_estimator).won(sizes), bare(bare_estimator, sizes))


def old_factor_words(scorer, raw: pl.DataFrame, x: pl.DataFrame) -> dict[str, list]:
    """The factors as they were first written: every feature's value shown for every row, then gathered."""
    from kamcore_plugins.models.scoring import MIN_EFFECT, effect, shown

    moved = x.select(effect(f, x).alias(f"d{i}") for i, f in enumerate(scorer.features)).to_numpy()
    n = raw.height
    display = raw.with_columns(e.alias(f"__{lang}{i}") for i, f in enumerate(scorer.features)
                               for lang, e in zip(("zh", "en"), shown(f, raw)))
    values = {lang: pl.concat([display[f"__{lang}{i}"] for i in range(len(scorer.features))]) for lang in ("zh", "en")}
    out = {}
    for name, raising in (("factors_raising", True), ("factors_lowering", False)):
        signed = np.nan_to_num(moved if raising else -moved)
        order = np.argsort(-signed, axis=1, kind="stable")[:, : scorer.top]
        size = np.take_along_axis(signed, order, axis=1)
        parts = []
        for k in range(order.shape[1]):
            j = pl.Series(order[:, k], dtype=pl.UInt32)
            at = pl.Series(order[:, k].astype(np.int64) * n + np.arange(n, dtype=np.int64))
            frame = pl.DataFrame({"label_zh": scorer.labels_zh.gather(j), "label_en": scorer.labels_en.gather(j),
                                  "zh": values["zh"].gather(at), "en": values["en"].gather(at),
                                  "points": np.round(size[:, k] * 100).astype(np.int64),
                                  "ok": size[:, k] >= MIN_EFFECT - 1e-9})
            pct = pl.format("{}{}%", pl.lit("+" if raising else "-"), pl.col("points"))
            text = pl.format("{}：{}（{}） / {}: {} ({})", pl.col("label_zh"), pl.col("zh").fill_null("未知"), pct,
                             pl.col("label_en"), pl.col("en").fill_null("unknown"), pct)
            parts.append(frame.select(pl.when(pl.col("ok")).then(text)).to_series())
        out[name] = pl.select(pl.concat_str(parts, separator="; ", ignore_nulls=True)).to_series() \
            .replace("", None).to_list()
    return out


@pytest.mark.parametrize("drop", [None, "Product"])
def test_factor_words_name_the_values_as_before(drop):
    """Only the values a row names are turned into words now; the words are the same, also for a feature
    the export lacks (its value is unknown)."""
    from kamcore_plugins.models.scoring import ModelScorer

    model = load(SHIPPED)
    raw = pl.read_csv(BOHANEC, separator=";", infer_schema=False)
    scored = kamcore.score_frame(raw.drop(drop) if drop else raw, config=str(BOHANEC_TOML)).scored
    scorer = ModelScorer(model, prior_rows=50, top=3)
    names = [f.name for f in scorer.features if f.name in scored.columns] + ["total_score"]
    batch = scored.select(pl.struct(names).alias("s")).to_series()
    got = scorer._compute(batch)
    raw_features = batch.struct.unnest()
    want = old_factor_words(scorer, raw_features, feature_frame(raw_features, scorer.features))
    assert got["factors_raising"].to_list() == want["factors_raising"]
    assert got["factors_lowering"].to_list() == want["factors_lowering"]
    if drop:
        label = next(f.label_en for f in scorer.features if f.name == drop)
        assert any(f"{label}: unknown" in (text or "") for text in want["factors_raising"] + want["factors_lowering"])


def test_a_tiny_first_batch_does_not_settle_the_check():
    """A transformer that is not row-wise can look row-wise on one row: the check goes on until a batch of
    CHECK_ROWS rows has been compared."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from kamcore_plugins.models.predict import CHECK_ROWS

    def share_of_batch(frame):
        values = frame.to_series().to_list()
        return np.array([[values.count(v) / len(values)] for v in values])

    x = pl.DataFrame({"region": ["n", "n", "s", "w", "n", "s"] * (CHECK_ROWS // 3)})
    y = np.array(["won", "lost", "won", "lost", "lost", "won"] * (CHECK_ROWS // 3))
    pipeline = Pipeline([("features", ColumnTransformer([("f0", FunctionTransformer(share_of_batch), ["region"])])),
                         ("classifier", LogisticRegression())]).fit(x, y)
    predictor = Predictor(pipeline)
    assert np.array_equal(predictor.won(x.head(1)), bare(pipeline, x.head(1)))
    assert predictor.encoder is not None and not predictor.checked  # one row: the same either way, not settled
    assert np.array_equal(predictor.won(x), bare(pipeline, x))
    assert predictor.encoder is None and predictor.checked
