#!/usr/bin/env python3
"""The floor of `kam score --model`: read the export with polars and run the model's bare scikit-learn
pipeline on it, nothing else.

    python benchmarks/model_floor.py EXPORT MODEL [--chunk 100000]

Reads EXPORT as the parse-only floor does (every column as text), encodes the model's features from it
with kamcore's own encoder (``feature_frame``) and calls ``predict_proba`` in chunks of --chunk rows
(all rows at once would one-hot encode the whole file in memory). Features the raw export lacks (the
normalised and derived columns, the criterion points) are passed as missing: the pipeline does the same
work per row whatever the values. Prints ``rows=<n> parse_s=<s> predict_s=<s> total_s=<s>``.
"""

from __future__ import annotations

import argparse
import time

START = time.perf_counter()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("export")
    ap.add_argument("model")
    ap.add_argument("--chunk", type=int, default=100_000)
    args = ap.parse_args()

    import polars as pl

    from kamcore_plugins.models.features import Feature, feature_frame
    from kamcore_plugins.models.store import load
    from kamcore_plugins.models.train import won_probability

    t0 = time.perf_counter()
    frame = pl.read_csv(args.export, infer_schema=False)
    t1 = time.perf_counter()
    model = load(args.model)
    features = [Feature.from_card(f) for f in model.card["features"]]
    total = 0.0
    for start in range(0, frame.height, args.chunk):
        x = feature_frame(frame.slice(start, args.chunk), features)
        total += float(won_probability(model.pipeline, x).sum())
    t2 = time.perf_counter()
    print(f"rows={frame.height} parse_s={t1 - t0:.3f} predict_s={t2 - t1:.3f} total_s={t2 - START:.3f} "
          f"checksum={total:.3f}")


if __name__ == "__main__":
    main()
