"""The win model (issue 5): `kam train`, `kam evaluate`, `kam score --model`, the model card, safe loading.

Real scikit-learn models on real files: the Bohanec data shipped in examples/bohanec, and an export
generated here whose columns kam has never seen. The cross-validation runs with fewer folds and
repeats than the README's command, to keep the suite quick.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import random
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import sklearn

sys.path.insert(0, str(Path(__file__).parent))
from helpers import builtin_plugins, invoke, kam_env, one_error_line, run_kam  # noqa: E402,F401

import kamcore  # noqa: E402
from kamcore.config import load_config  # noqa: E402
from kamcore.plugins import get_kam, reset  # noqa: E402
from kamcore_plugins.models.store import ModelError, card_path, load  # noqa: E402

pytestmark = pytest.mark.usefixtures("kam_env")

ROOT = Path(__file__).resolve().parent.parent
BOHANEC = ROOT / "examples" / "bohanec" / "Salvirt_B2B_ML_dataset.csv"
BOHANEC_TOML = ROOT / "examples" / "bohanec" / "kam.toml"
QUICK = ["--folds", "3", "--repeats", "1"]
MODEL_COLUMNS = {"model_probability", "scorecard_probability", "blend_weight", "factors_raising", "factors_lowering"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """The default model's recipe (gradient boosting, no points) on Bohanec, with a quick cross-validation."""
    folder = tmp_path_factory.mktemp("bohanec-model")
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("KAM_")]:
            patch.delenv(name)
        patch.setenv("KAM_LOAD_PLUGINS", builtin_plugins())
        patch.chdir(folder)
        reset()
        result = invoke("train", BOHANEC, "--config", BOHANEC_TOML, "--target", "Status", "--won", "Won",
                        "--no-points", "-o", folder / "bohanec", *QUICK)
        reset()
    assert result.exit_code == 0, result.output
    return folder / "bohanec.joblib"


def copy_model(model: Path, folder: Path, name: str = "copy") -> Path:
    """The model and its card under a new name (cards name their model file, so the card is rewritten)."""
    target = folder / f"{name}{model.suffix}"
    shutil.copyfile(model, target)
    card = json.loads(card_path(model).read_text(encoding="utf-8"))
    card["model_file"] = target.name
    card_path(target).write_text(json.dumps(card), encoding="utf-8")
    return target


def edit_card(model: Path, **changes) -> None:
    card = json.loads(card_path(model).read_text(encoding="utf-8"))
    card.update(changes)
    card_path(model).write_text(json.dumps(card), encoding="utf-8")


def bohanec_frame(rows: int | None = None) -> pl.DataFrame:
    frame = pl.read_csv(BOHANEC, separator=";", infer_schema=False)
    return frame if rows is None else frame.head(rows)


# -- kam train: the model and its card ------------------------------------------------------------


def test_train_writes_the_model_and_its_card(trained):
    card = json.loads(card_path(trained).read_text(encoding="utf-8"))
    data = trained.read_bytes()
    assert card["kind"] == "kamcore-win-model" and card["model_file"] == trained.name and card["format"] == "joblib"
    assert card["sha256"] == hashlib.sha256(data).hexdigest() and card["size_bytes"] == len(data)
    assert card["versions"]["scikit-learn"] == sklearn.__version__ and card["versions"]["python"]
    assert card["created_at"].endswith("+00:00")
    assert card["classes"] == ["lost", "won"]
    assert card["classifier"]["name"] == "gradient_boosting" and "sigmoid" in card["classifier"]["calibration"]
    # the data: fingerprint, size, the input file's own hash
    assert card["data"]["n_rows"] == 448 and card["data"]["n_distinct_rows"] == 365
    assert card["data"]["n_won"] + card["data"]["n_lost"] == 365
    assert len(card["data"]["sha256"]) == 64
    assert card["data"]["inputs"][0]["sha256"] == "26eef1dc0b0b91423482ec861520107b86c62f0d0330098a76516b0792a7bb05"
    # features: canonical columns under their canonical names, other columns as they come, no points here
    names = {f["name"] for f in card["features"]}
    assert {"budget_status", "need_clarity", "Comp_size", "Up_sale", "competitor_count"} <= names
    assert not any(name.startswith("p") and name[1:2].isdigit() for name in names)
    budget = next(f for f in card["features"] if f["name"] == "budget_status")
    assert budget["kind"] == "category" and budget["label_zh"] == "项目的预算" and budget["reference"]
    assert set(budget["effects"]["values"]) >= {"allocated", "none", "<missing>"}
    # metrics of the quick cross-validation, with the scorecard's on the same folds
    metrics = card["metrics"]
    assert metrics["cv"]["kind"] == "stratified" and metrics["cv"]["folds_evaluated"] == 3
    assert 0.78 < metrics["roc_auc"] < 0.9 and 0.12 < metrics["brier"] < 0.2
    assert 0.65 < metrics["scorecard"]["roc_auc"] < 0.78
    text = card_path(trained).with_suffix(".md").read_text(encoding="utf-8")
    assert card["sha256"] in text and "ROC AUC" in text and "budget_status" in text and "scikit-learn" in text


def test_training_is_reproducible_and_the_cross_validation_does_not_change_the_model(trained, tmp_path):
    result = invoke("train", BOHANEC, "--config", BOHANEC_TOML, "--target", "Status", "--won", "Won", "--no-points",
                    "-o", tmp_path / "again", "--repeats", "0")
    assert result.exit_code == 0, result.output
    card = json.loads((tmp_path / "again.card.json").read_text(encoding="utf-8"))
    assert card["sha256"] == json.loads(card_path(trained).read_text(encoding="utf-8"))["sha256"]
    assert card["metrics"] is None  # --repeats 0: no cross-validation


def test_the_shipped_default_model_is_what_its_command_trains(tmp_path):
    shipped = ROOT / "models" / "bohanec.card.json"
    card = json.loads(shipped.read_text(encoding="utf-8"))
    if card["versions"]["scikit-learn"] != sklearn.__version__:
        pytest.skip(f"the shipped model was trained with scikit-learn {card['versions']['scikit-learn']}")
    words = shlex.split(card["training"]["command"])
    assert words[:2] == ["kam", "train"]
    out = words.index("-o")
    words[out + 1] = str(tmp_path / "bohanec")
    repeats = words.index("--repeats")
    words[repeats + 1] = "0"  # the cross-validation only measures; the model is the same without it
    done = run_kam(*words[1:], cwd=ROOT)
    assert done.returncode == 0, done.stderr.decode()
    fresh = json.loads((tmp_path / "bohanec.card.json").read_text(encoding="utf-8"))
    assert (fresh["classifier"], fresh["features"]) == (card["classifier"], card["features"])
    assert hashlib.sha256((ROOT / "models" / card["model_file"]).read_bytes()).hexdigest() == card["sha256"]
    # the same model scores the same: the file's bytes can differ in a float's last bit from one CPU to
    # another (the calibration's intercept: its optimiser's sums), which no 4-decimal probability shows
    scored = {}
    for name, model in (("shipped", ROOT / "models" / card["model_file"]), ("fresh", tmp_path / "bohanec.joblib")):
        out = tmp_path / f"{name}.csv"
        done = run_kam("score", str(BOHANEC), "--config", str(BOHANEC_TOML), "--model", str(model), "-o", str(out),
                       "-q", cwd=ROOT)
        assert done.returncode == 0, done.stderr.decode()
        scored[name] = pl.read_csv(out, infer_schema=False)
    assert scored["fresh"].height == 448 and scored["fresh"]["model_probability"].n_unique() > 50
    assert scored["fresh"].equals(scored["shipped"])
    assert card["metrics"]["roc_auc"] >= 0.84 and card["metrics"]["brier"] <= 0.165  # the targets
    assert card["metrics"]["cv"]["folds"] == 10 and card["metrics"]["cv"]["repeats"] == 5


# -- kam evaluate ---------------------------------------------------------------------------------


def test_evaluate_reports_json_and_a_self_contained_html_page(tmp_path):
    report = tmp_path / "report.html"
    result = invoke("evaluate", BOHANEC, "--config", BOHANEC_TOML, "--target", "Status", "--won", "Won",
                    "--classifier", "logistic", "--json", "--report", report, *QUICK)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    for part in (summary, summary["scorecard"]):
        assert {"roc_auc", "brier", "log_loss", "n_rows", "n_distinct_rows", "calibration"} <= set(part)
        assert part["n_rows"] == 448 and part["n_distinct_rows"] == 365
    assert summary["roc_auc"] > summary["scorecard"]["roc_auc"] > 0.6
    assert summary["cv"]["description"] == "1x3-fold stratified on distinct rows"
    assert sum(b["count"] for b in summary["calibration"]) == 365
    assert summary["classifier"] == "logistic" and "p4_budget" in summary["features"]
    page = report.read_text(encoding="utf-8")
    assert page.count("<svg") == 2 and "ROC curve" in page and "Calibration" in page
    assert not any(tag in page for tag in ("<script", "<link", "<img", "src=", "href="))  # nothing fetched


def test_evaluate_a_trained_model_and_print_a_table(trained):
    result = invoke("evaluate", BOHANEC, "--config", BOHANEC_TOML, "--target", "Status", "--won", "Won",
                    "--model", trained)
    assert result.exit_code == 0, result.output
    assert "model" in result.stdout and "scorecard (rules)" in result.stdout and "ROC AUC" in result.stdout
    assert "the given model scored these rows as they are" in result.stdout


# -- kam score --model ----------------------------------------------------------------------------


def test_score_with_a_model_blends_it_with_the_scorecard(trained, tmp_path):
    out = tmp_path / "scored.csv"
    result = invoke("score", BOHANEC, "--config", BOHANEC_TOML, "--model", trained, "-o", out)
    assert result.exit_code == 0, result.output
    scored = pl.read_csv(out)
    assert MODEL_COLUMNS <= set(scored.columns) and scored.height == 448
    card = json.loads(card_path(trained).read_text(encoding="utf-8"))
    weight = round(365 / (365 + 50), 4)
    assert scored["blend_weight"].unique().to_list() == [weight]
    expected = (weight * scored["model_probability"] + (1 - weight) * scored["scorecard_probability"]).round(4)
    assert (scored["win_probability"] - expected).abs().max() <= 1e-4
    assert scored["model_probability"].is_between(0, 1).all() and scored["model_probability"].n_unique() > 20
    # the factors name a column and its value, in Chinese and English, with the points they move
    first = scored.row(0, named=True)
    assert " / " in first["factors_raising"] and "%" in first["factors_raising"]
    assert any("项目的预算：" in text and "budget: " in text for text in scored["factors_lowering"].drop_nulls())
    summary = json.loads((tmp_path / "scored.csv.summary.json").read_text(encoding="utf-8"))
    assert summary["win_probability_from"] == "win_model"
    assert MODEL_COLUMNS <= set(summary["columns"]["scores"])
    assert card["sha256"]  # the model was loaded through its card
    report = summary["reports"]["win_model"]  # which model scored the rows, for the record
    assert report["model"] == {"path": str(trained), "name": card["name"], "sha256": card["sha256"],
                               "format": card["format"], "created_at": card["created_at"],
                               "classifier": card["classifier"]["name"], "trained_on_deals": 365,
                               "blend_weight": weight}
    assert report["features_missing"] == [] and "notes" not in report

    plain = tmp_path / "plain.csv"
    assert invoke("score", BOHANEC, "--config", BOHANEC_TOML, "-o", plain).exit_code == 0
    unblended = pl.read_csv(plain)
    assert not MODEL_COLUMNS & set(unblended.columns)
    assert unblended["win_probability"].to_list() == scored["scorecard_probability"].to_list()


def test_the_workbooks_column_guide_names_the_models_columns(trained, tmp_path):
    import openpyxl

    out = tmp_path / "scored.xlsx"
    result = invoke("score", BOHANEC, "--config", BOHANEC_TOML, "--model", trained, "-o", out)
    assert result.exit_code == 0, result.output
    workbook = openpyxl.load_workbook(out, read_only=True)
    header = next(workbook["scored"].iter_rows(values_only=True))
    guide = {row[0]: row[1:] for row in list(workbook["列说明 Columns"].iter_rows(values_only=True))[1:]}
    assert list(guide) == list(header)
    assert guide["model_probability"] == ("模型赢单概率", "Model's win probability", "0–1")
    assert guide["factors_lowering"][:2] == ("降低概率的因素", "Factors lowering it")
    assert all(guide[name][0] and guide[name][1] for name in MODEL_COLUMNS)


def test_the_summary_names_the_models_features_the_export_lacks_as_the_terminal_does(trained, tmp_path, caplog):
    """The bundled English export lacks Bohanec's own columns: the summary lists them as the warning does,
    and says so in its notes."""
    out = tmp_path / "scored.csv"
    with caplog.at_level(logging.WARNING, logger="kamcore.models"):
        result = invoke("score", ROOT / "examples" / "opportunities_en.csv", "--model", trained, "-o", out, "-q")
    assert result.exit_code == 0, result.output
    said = [r.getMessage() for r in caplog.records if r.name == "kamcore.models"]
    assert len(said) == 1 and said[0].startswith("the model ") and "uses columns this export lacks" in said[0]
    summary = json.loads((tmp_path / "scored.csv.summary.json").read_text(encoding="utf-8"))
    report = summary["reports"]["win_model"]
    assert report["model"]["sha256"] == json.loads(card_path(trained).read_text(encoding="utf-8"))["sha256"]
    assert len(report["features_missing"]) > 3 and "Product" in report["features_missing"]
    assert said[0].endswith(": " + ", ".join(report["features_missing"]))
    assert report["notes"] == said and said[0] in summary["notes"]


def test_every_run_in_one_process_warns_of_the_features_its_export_lacks(trained, tmp_path, caplog):
    """The loaded model is kept for the next run (a program, a Dask worker): its warning is not."""
    for run in range(2):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="kamcore.models"):
            result = invoke("score", ROOT / "examples" / "opportunities_en.csv", "--model", trained,
                            "-o", tmp_path / f"scored{run}.csv", "-q")
        assert result.exit_code == 0, result.output
        said = [r.getMessage() for r in caplog.records if r.name == "kamcore.models"]
        assert len(said) == 1 and "uses columns this export lacks" in said[0], (run, said)


def test_score_one_gives_the_batch_numbers_with_a_model(trained):
    config = load_config(BOHANEC_TOML, get_kam().config_defaults(), overrides={"model": {"path": str(trained)}})
    frame = bohanec_frame(12).with_columns(pl.format("B-{}", pl.int_range(pl.len())).alias("编号"))
    batch = kamcore.score_frame(frame, config).scored
    assert MODEL_COLUMNS <= set(batch.columns)
    for index, row in enumerate(frame.iter_rows(named=True)):  # per-row ok: twelve rows
        assert kamcore.score_one(row, config) == batch.row(index, named=True)


def test_a_model_in_kam_toml_applies_without_the_option(trained, tmp_path):
    toml = tmp_path / "kam.toml"
    toml.write_text(BOHANEC_TOML.read_text(encoding="utf-8") + f'\n[model]\npath = "{trained.as_posix()}"\n'
                    "prior_rows = 0\ntop_factors = 1\n", encoding="utf-8")
    out = tmp_path / "scored.csv"
    assert invoke("score", BOHANEC, "--config", toml, "-o", out).exit_code == 0
    scored = pl.read_csv(out)
    assert scored["blend_weight"].unique().to_list() == [1.0]
    assert scored["win_probability"].to_list() == scored["model_probability"].to_list()
    assert not scored["factors_raising"].drop_nulls().str.contains("; ").any()  # one factor at most


# -- safe loading ---------------------------------------------------------------------------------


class Payload:
    """A pickle that writes a marker file when it is unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.write_text, (self.marker, "the payload ran")


def test_a_tampered_model_is_refused_before_anything_is_unpickled(trained, tmp_path):
    model = copy_model(trained, tmp_path, "tampered")
    size = trained.stat().st_size

    def payload(marker: Path) -> bytes:  # a valid pickle, padded to the model's size (pickle stops at STOP)
        data = pickle.dumps(Payload(marker))
        return data + b"\0" * (size - len(data))

    marker = tmp_path / "payload-ran.txt"
    model.write_bytes(payload(marker))
    # the payload is live: unpickled on its own, it writes its marker
    probe = tmp_path / "probe.txt"
    pickle.loads(payload(probe))  # noqa: S301 - the test's own payload
    assert probe.read_text() == "the payload ran"

    with pytest.raises(ModelError, match="does not match its card"):
        load(model)
    result = invoke("score", BOHANEC, "--config", BOHANEC_TOML, "--model", model, "-o", tmp_path / "out.csv")
    assert result.exit_code == 4
    assert "kam: model error:" in one_error_line(result.stderr) and "it was not loaded" in result.stderr
    done = run_kam("score", BOHANEC, "--config", BOHANEC_TOML, "--model", model, "-o", tmp_path / "out2.csv",
                   cwd=tmp_path)
    assert done.returncode == 4 and "sha256" in done.stderr.decode()
    assert not marker.exists(), "the tampered model's payload ran"
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "out2.csv").exists()


def test_truncated_and_empty_model_files_are_refused(trained, tmp_path):
    truncated = copy_model(trained, tmp_path, "truncated")
    truncated.write_bytes(trained.read_bytes()[:1000])
    with pytest.raises(ModelError, match=r"truncated \(1000 of \d+ bytes, by its card\)"):
        load(truncated)
    empty = copy_model(trained, tmp_path, "empty")
    empty.write_bytes(b"")
    result = invoke("score", BOHANEC, "--config", BOHANEC_TOML, "--model", empty, "-o", tmp_path / "out.csv")
    assert result.exit_code == 4 and "the model file is empty" in one_error_line(result.stderr)


def test_files_that_are_not_models_are_refused(trained, tmp_path):
    # a file with no card beside it
    with pytest.raises(ModelError, match="no model card"):
        load(BOHANEC)
    # bytes that match their card but are not a pickle
    text = copy_model(trained, tmp_path, "text")
    text.write_bytes(b"Product;Seller\nA;B\n")
    edit_card(text, sha256=hashlib.sha256(text.read_bytes()).hexdigest(), size_bytes=text.stat().st_size)
    with pytest.raises(ModelError, match="not a model file"):
        load(text)
    # a pickle that matches its card but is no classifier
    other = copy_model(trained, tmp_path, "other")
    other.write_bytes(pickle.dumps({"not": "a model"}))
    edit_card(other, sha256=hashlib.sha256(other.read_bytes()).hexdigest(), size_bytes=other.stat().st_size)
    with pytest.raises(ModelError, match="not a kamcore win model"):
        load(other)
    # a card that is not a card
    broken = copy_model(trained, tmp_path, "broken")
    card_path(broken).write_text("{ not json", encoding="utf-8")
    result = invoke("score", BOHANEC, "--model", broken, "-o", tmp_path / "out.csv")
    assert result.exit_code == 4 and "not a readable model card" in one_error_line(result.stderr)
    missing = invoke("score", BOHANEC, "--model", tmp_path / "nowhere", "-o", tmp_path / "out.csv")
    assert missing.exit_code == 4 and "no such model file" in one_error_line(missing.stderr)


def test_a_model_from_another_scikit_learn_version_needs_permission(trained, tmp_path):
    model = copy_model(trained, tmp_path, "old")
    card = json.loads(card_path(model).read_text(encoding="utf-8"))
    edit_card(model, versions={**card["versions"], "scikit-learn": "0.24.2"})
    result = invoke("score", BOHANEC, "--config", BOHANEC_TOML, "--model", model, "-o", tmp_path / "out.csv")
    assert result.exit_code == 4
    line = one_error_line(result.stderr)
    assert "scikit-learn 0.24.2" in line and "--allow-version-mismatch" in line
    allowed = invoke("score", BOHANEC, "--config", BOHANEC_TOML, "--model", model, "--allow-version-mismatch",
                     "-o", tmp_path / "out.csv")
    assert allowed.exit_code == 0, allowed.output
    assert "model_probability" in pl.read_csv(tmp_path / "out.csv").columns


def test_the_skops_format_loads_with_its_trusted_type_check(trained, tmp_path):
    pytest.importorskip("skops", minversion="0.12")
    import skops.io as sio
    from sklearn.base import BaseEstimator, ClassifierMixin

    result = invoke("train", BOHANEC, "--config", BOHANEC_TOML, "--target", "Status", "--won", "Won", "--no-points",
                    "-o", tmp_path / "safe", "--format", "skops", "--repeats", "0")
    assert result.exit_code == 0, result.output
    safe = tmp_path / "safe.skops"
    assert safe.read_bytes()[:4] == b"PK\x03\x04"
    loaded, pickled = load(safe), load(trained)
    x = pl.DataFrame({"Product": ["Product A"], "Comp_size": ["Big"], "budget_status": ["allocated"]})
    from kamcore_plugins.models.features import Feature, feature_frame
    from kamcore_plugins.models.train import won_probability

    features = [Feature.from_card(f) for f in loaded.card["features"]]
    assert won_probability(loaded.pipeline, feature_frame(x, features)) == \
        pytest.approx(won_probability(pickled.pipeline, feature_frame(x, features)))
    out = tmp_path / "scored.csv"
    assert invoke("score", BOHANEC, "--config", BOHANEC_TOML, "--model", safe, "-o", out).exit_code == 0

    class Stranger(ClassifierMixin, BaseEstimator):  # a type skops does not know and kam does not trust
        pass

    strange = tmp_path / "strange.skops"
    strange.write_bytes(sio.dumps({"estimator": Stranger()}))
    shutil.copyfile(card_path(safe), card_path(strange))
    edit_card(strange, model_file=strange.name, sha256=hashlib.sha256(strange.read_bytes()).hexdigest(),
              size_bytes=strange.stat().st_size)
    with pytest.raises(ModelError, match="types kam does not trust: .*Stranger"):
        load(strange)


# -- an export kam has never seen -----------------------------------------------------------------


def unseen_export(path: Path, rows: int = 400, seed: int = 3) -> Path:
    """A German CRM export: its own outcome column and values, an id, a constant, a leak, open deals."""
    rng = random.Random(seed)
    lines = ["Vorgang,Region,Kanal,Volumen,Mandant,Datum,Verlustgrund,Ergebnis"]
    for i in range(rows):
        region = rng.choice(["Nord", "Süd", "West", "Ost"])
        channel = rng.choice(["Partner", "Direkt", "Web"])
        volume = round(rng.lognormvariate(11, 1), 2)
        logit = {"Nord": 0.8, "Süd": 0.0, "West": -0.4, "Ost": -0.8}[region] + \
            {"Partner": 0.9, "Direkt": 0.2, "Web": -0.7}[channel] - 0.3 * (np.log(volume) - 11)
        won = rng.random() < 1 / (1 + np.exp(-logit))
        outcome = "offen" if i % 25 == 0 else ("gewonnen" if won else "verloren")
        reason = "" if outcome != "verloren" else rng.choice(["Preis", "Wettbewerb", "kein Budget"])
        date = f"2023-{1 + i * 12 // rows:02d}-{1 + i % 28:02d}"
        lines.append(f"V-{10000 + i},{region},{channel},{volume},DE01,{date},{reason},{outcome}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_train_and_evaluate_an_unseen_export_with_options_alone(tmp_path):
    export = unseen_export(tmp_path / "crm.csv")
    result = invoke("train", export, "--target", "Ergebnis", "--won", "gewonnen", "--lost", "verloren",
                    "--classifier", "logistic", "-o", tmp_path / "crm", *QUICK)
    assert result.exit_code == 0, result.output
    card = json.loads((tmp_path / "crm.card.json").read_text(encoding="utf-8"))
    reasons = {d["column"]: d["reason"] for d in card["dropped"]}
    assert reasons["Vorgang"].startswith("identifier-like")
    assert reasons["Mandant"].startswith("constant")
    assert reasons["Verlustgrund"].startswith("leakage") and "--keep Verlustgrund" in reasons["Verlustgrund"]
    features = {f["name"]: f["kind"] for f in card["features"]}
    assert features["Region"] == "category" and features["Kanal"] == "category" and features["Volumen"] == "number"
    assert card["data"]["n_rows"] == 400 - 16  # the open deals are left out
    assert any("neither won nor lost" in note for note in card["data"]["notes"])
    assert "left out Verlustgrund: leakage" in result.stderr

    evaluated = invoke("evaluate", export, "--target", "Ergebnis", "--won", "gewonnen", "--lost", "verloren",
                       "--classifier", "logistic", "--json", *QUICK)
    assert evaluated.exit_code == 0, evaluated.output
    summary = json.loads(evaluated.stdout)
    assert summary["n_rows"] == 384 and summary["roc_auc"] > 0.6 and "Verlustgrund" not in summary["features"]
    assert {"roc_auc", "brier", "log_loss", "n_rows", "n_distinct_rows"} <= set(summary["scorecard"])

    kept = invoke("evaluate", export, "--target", "Ergebnis", "--won", "gewonnen", "--lost", "verloren",
                  "--classifier", "logistic", "--keep", "Verlustgrund", "--json", *QUICK)
    kept_summary = json.loads(kept.stdout)
    assert "Verlustgrund" in kept_summary["features"] and kept_summary["roc_auc"] > 0.97

    on_model = invoke("evaluate", export, "--target", "Ergebnis", "--won", "gewonnen", "--lost", "verloren",
                      "--model", tmp_path / "crm", "--json")
    assert on_model.exit_code == 0 and json.loads(on_model.stdout)["cv"]["kind"] == "none"
    scored = invoke("score", export, "--model", tmp_path / "crm", "-o", tmp_path / "scored.csv")
    assert scored.exit_code == 0, scored.output
    out = pl.read_csv(tmp_path / "scored.csv")
    assert out["model_probability"].null_count() == 0 and out["factors_raising"].drop_nulls().len() > 0
    assert out.filter(pl.col("Region") == "Nord")["model_probability"].mean() > \
        out.filter(pl.col("Region") == "Ost")["model_probability"].mean()


def test_without_lost_a_running_deal_is_left_out_not_counted_lost(tmp_path):
    """A Chinese CRM's 商机状态 holds 赢单, 输单 and 进行中: without --lost, 'every other value' must not make the
    deals still running into lost ones."""
    export = unseen_export(tmp_path / "crm.csv")
    text = export.read_text(encoding="utf-8").replace("Ergebnis", "商机状态")
    for german, chinese in (("gewonnen", "赢单"), ("verloren", "输单"), ("offen", "进行中")):
        text = text.replace(f",{german}\n", f",{chinese}\n")
    export.write_text(text, encoding="utf-8")
    result = invoke("evaluate", export, "--target", "商机状态", "--won", "赢单", "--classifier", "logistic", "--json",
                    *QUICK)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["n_rows"] == 400 - 16  # the 16 running deals left out, as with --lost 输单
    explicit = json.loads(invoke("evaluate", export, "--target", "商机状态", "--won", "赢单", "--lost", "输单",
                                 "--classifier", "logistic", "--json", *QUICK).stdout)
    assert (explicit["n_rows"], explicit["roc_auc"]) == (summary["n_rows"], summary["roc_auc"])


def test_time_ordered_and_group_aware_validation(tmp_path):
    export = unseen_export(tmp_path / "crm.csv")
    common = ["--target", "Ergebnis", "--won", "gewonnen", "--classifier", "logistic", "--json", *QUICK]
    timed = json.loads(invoke("evaluate", export, *common, "--time", "Datum").stdout)
    assert timed["cv"]["kind"] == "time-ordered" and timed["cv"]["folds_evaluated"] == 3
    grouped = json.loads(invoke("evaluate", export, *common, "--group", "Region", "--drop", "Region").stdout)
    assert grouped["cv"]["kind"] == "group-aware" and "Region" not in grouped["features"]
    # every value but the won one is lost unless --lost says otherwise: the open deals count as lost here
    assert timed["n_rows"] == 400


def test_a_chinese_export_with_dates_is_validated_in_time_order(tmp_path):
    rng = random.Random(5)
    lines = ["编号,采购时间,项目的预算,客户的应用或项目,标的,结果"]
    for i in range(160):
        budget, need = rng.choice(["有", "部分", "无"]), rng.choice(["清楚", "部分清楚", "不清楚"])
        chance = 0.2 + 0.3 * (budget == "有") + 0.3 * (need == "清楚")
        outcome = "赢单" if rng.random() < chance else "丢单"
        lines.append(f"KA-{i:03d},2024-{1 + i // 14:02d}-{1 + i % 28:02d},{budget},{need},{rng.randint(5, 500)}万,"
                     f"{outcome}")
    export = tmp_path / "history.csv"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = invoke("evaluate", export, "--target", "结果", "--won", "赢单", "--classifier", "logistic", "--json",
                    *QUICK)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["cv"]["kind"] == "time-ordered" and "dates in purchase_date" in " ".join(summary["notes"])
    assert {"purchase_date", "budget_status", "need_clarity", "deal_size_base", "p4_budget"} <= set(summary["features"])
    assert {"column": "opportunity_id", "reason": "identifier: the opportunity id"} in summary["dropped"]
    assert summary["roc_auc"] > 0.6


def test_clear_errors_for_a_wrong_target_or_won_value(tmp_path):
    export = unseen_export(tmp_path / "crm.csv", rows=40)
    wrong = invoke("train", export, "--target", "Status", "--won", "gewonnen", "-o", tmp_path / "m")
    assert wrong.exit_code == 3 and "no column 'Status' for --target" in one_error_line(wrong.stderr)
    value = invoke("train", export, "--target", "Ergebnis", "--won", "Won", "-o", tmp_path / "m")
    line = one_error_line(value.stderr)
    assert value.exit_code == 3 and "no row has Ergebnis = 'Won'" in line and "'gewonnen'" in line
    unknown = invoke("evaluate", export, "--target", "Ergebnis", "--won", "gewonnen", "--classifier", "forest")
    assert unknown.exit_code == 3 and "no win model named 'forest'" in one_error_line(unknown.stderr)
    assert not (tmp_path / "m.joblib").exists()


def test_the_built_in_win_models_are_registered_unfitted():
    models = get_kam().win_models()
    assert {"logistic", "gradient_boosting"} <= set(models.items)
    assert models.owners["logistic"] == "win_model"
    for name in ("logistic", "gradient_boosting"):
        estimator = models[name].build(random_state=1)
        assert estimator.get_params()["random_state"] == 1 and not hasattr(estimator, "classes_")
