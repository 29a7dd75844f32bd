"""How well does the unfitted scorecard rank won above lost deals in the Bohanec data?

    kam score examples/bohanec/Salvirt_B2B_ML_dataset.csv --config examples/bohanec/kam.toml -o /tmp/b.csv
    python examples/bohanec/evaluate.py /tmp/b.csv

Prints the ROC AUC of total_score (and of each block and criterion) against Status = Won, on the
365 distinct rows: 83 of the 448 rows are exact copies of others, and counting them twice would
weigh those deals double. The scored file keeps the input's row order (ids ``<file stem>-<row>``),
so scores are joined back to the raw attributes by position before de-duplicating.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
from sklearn.metrics import roc_auc_score

DATA = Path(__file__).resolve().parent / "Salvirt_B2B_ML_dataset.csv"


def main(scored_path: str, data_path: str = str(DATA)) -> None:
    raw = pl.read_csv(data_path, separator=";", infer_schema=False)
    scored = pl.read_csv(scored_path, infer_schema=False)
    stem = Path(data_path).stem
    expected = [f"{stem}-{i}" for i in range(1, raw.height + 1)]
    if scored["opportunity_id"].to_list() != expected:
        sys.exit("the scored file is not the whole data set in its original order")
    score_columns = ["total_score", "real_score", "worth_score"] + [
        name for name in scored.columns if name[:1] == "p" and name[1:2].isdigit()]
    both = raw.with_columns(scored.select(pl.col(name).cast(pl.Float64) for name in score_columns))
    distinct = both.unique(subset=raw.columns, keep="first", maintain_order=True)
    won = (distinct["Status"] == "Won").to_numpy()
    print(f"{distinct.height} distinct rows of {raw.height}; {won.sum()} won, {(~won).sum()} lost")
    for name in score_columns:
        values = distinct[name]
        if values.null_count() == values.len():
            print(f"{name:15s} (no value on any row)")
            continue
        # an unknown criterion earns no points, which is how total_score counts it too
        print(f"{name:15s} AUC {roc_auc_score(won, values.fill_null(0).to_numpy()):.3f}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(*sys.argv[1:])
