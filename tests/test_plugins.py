"""The plugin manager's contract: loading, switches, duplicates, clashes, errors naming the plugin, `kam plugins`.

Plugins here are small classes with ``@hookimpl`` methods registered on a real :class:`kamcore.plugins.Kam`
next to the built-ins loaded from their entry points; the pipeline they run through is the real one.
"""

from __future__ import annotations

import importlib.metadata

import json
import logging
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

import kamcore
from kamcore import hookimpl, hookspecs, plugins
from kamcore.cli import cli
from kamcore.config import load_config
from kamcore.errors import KamError, PluginError
from kamcore.pipeline import run_score
from kamcore.plugins import Kam
from kamcore.registry import Criterion, Importer, Writer, WinModel

pytestmark = pytest.mark.usefixtures("clean_kam")

# the entry points kamcore itself declares (pyproject.toml), read from the installed metadata
BUILTINS = {ep.name for ep in importlib.metadata.entry_points(group="kamcore")
            if ep.dist is not None and ep.dist.name == "kamcore"}


def kam_with(*named_plugins: tuple[str, object]) -> Kam:
    kam = Kam(load_entry_points=True)
    for name, plugin in named_plugins:
        kam.register(plugin, name)
    kam.check()
    return kam


def score(export_csv: Path, kam: Kam) -> pl.DataFrame:
    return kamcore.score_frame(pl.read_csv(export_csv, infer_schema=False), kam=kam).scored


def criterion(name: str, number: int | None = None, column: str = "notes") -> Criterion:
    return Criterion(name=name, block="worth", number=number, points=pl.col(column).is_not_null().cast(pl.Float64),
                     max_points=1, label_zh=name, label_en=name, inputs=(column,))


# -- loading ------------------------------------------------------------------------------------


def test_builtins_register_through_their_entry_points():
    kam = Kam(load_entry_points=True)
    assert set(kam.versions) == BUILTINS
    assert all(version == kamcore.__version__ for version in kam.versions.values())
    assert kam.failed == {}
    rows = kam.describe(include_all=True)
    assert [r["name"] for r in rows] == sorted(BUILTINS)
    assert all(r["builtin"] for r in rows)
    assert kam.describe() == []  # without --all the built-ins are left out


def test_no_entry_points_means_no_plugins():
    kam = Kam(load_entry_points=False)
    assert kam.versions == {} and kam.describe(include_all=True) == []
    assert not kam.has_impls("register_criteria")


def test_a_registered_plugin_is_described_with_its_hooks():
    class Mine:
        @hookimpl
        def score(self, batch):
            return None

        @hookimpl
        def register_writers(self, register):
            pass

    kam = kam_with(("mine", Mine()))
    assert kam.describe() == [{"name": "mine", "version": None, "builtin": False,
                               "hooks": ["register_writers", "score"]}]
    assert [r["name"] for r in kam.describe(include_all=True, hook="score")] == ["mine"]


def test_get_kam_is_created_once_and_reset_forgets_it(monkeypatch):
    first = plugins.get_kam()
    assert plugins.get_kam() is first
    plugins.reset()
    monkeypatch.setenv("KAM_LOAD_PLUGINS", "writers")
    second = plugins.get_kam()
    assert second is not first and set(second.versions) == {"writers"}


def test_specs_are_keyword_callable_and_single_answers_are_firstresult():
    firstresult = {name for name in dir(hookspecs)
                   if getattr(getattr(hookspecs, name), "kamcore_spec", {}).get("firstresult")}
    assert firstresult == {"classify_stakeholders", "win_probability"}
    kam = Kam(load_entry_points=True)
    for hook in sorted(firstresult):  # the built-in answer must be overridable: trylast
        impls = getattr(kam.pm.hook, hook).get_hookimpls()
        # the built-in fallbacks (a built-in win model may override the scorecard's curve on purpose)
        assert impls and all(impl.trylast for impl in impls if impl.plugin_name in {"scorecard", "stakeholders"}), hook


# -- switches -----------------------------------------------------------------------------------


def test_load_switch_is_an_allow_list(monkeypatch, export_csv):
    monkeypatch.setenv("KAM_LOAD_PLUGINS", "csv_importer, writers")
    kam = plugins.get_kam()
    assert set(kam.versions) == {"csv_importer", "writers"}
    assert len(kam.criteria(load_config(None, kam.config_defaults()))) == 0


def test_load_switch_set_but_empty_loads_nothing(monkeypatch):
    monkeypatch.setenv("KAM_LOAD_PLUGINS", "")
    assert plugins.get_kam().versions == {}


def test_disable_switch_skips_a_plugin_and_scoring_follows(monkeypatch, export_csv):
    full = score(export_csv, plugins.get_kam())
    assert "p1_need" in full.columns and "band" in full.columns

    plugins.reset()
    monkeypatch.setenv("KAM_DISABLE_PLUGINS", "scorecard")
    kam = plugins.get_kam()
    assert set(kam.versions) == BUILTINS - {"scorecard"}
    bare = score(export_csv, kam)
    assert not [c for c in bare.columns if c.startswith("p1_") or c in ("band", "win_probability")]
    assert bare["total_score"].is_null().all()
    assert bare["opportunity_id"].to_list() == full["opportunity_id"].to_list()


def test_disable_wins_over_load(monkeypatch):
    monkeypatch.setenv("KAM_LOAD_PLUGINS", "scorecard,writers")
    monkeypatch.setenv("KAM_DISABLE_PLUGINS", "scorecard")
    assert set(plugins.get_kam().versions) == {"writers"}


def test_trace_switch_logs_every_hook_call_with_its_plugin(monkeypatch, caplog, export_csv):
    monkeypatch.setenv("KAM_TRACE_PLUGINS", "1")
    with caplog.at_level(logging.WARNING, logger="kamcore.plugins"):
        score(export_csv, plugins.get_kam())
    traced = [r.getMessage() for r in caplog.records if r.name == "kamcore.plugins"]
    assert any(m.startswith("hook register_criteria plugin scorecard ") and m.endswith(" ms") for m in traced)
    assert any(m.startswith("hook win_probability plugin scorecard ") for m in traced)


# -- duplicates ---------------------------------------------------------------------------------


def test_duplicate_criterion_names_are_refused_naming_both_plugins(export_csv):
    class First:
        @hookimpl
        def register_criteria(self, register):
            register(criterion("references", 11))

    class Second:
        @hookimpl
        def register_criteria(self, register):
            register(criterion("references", 12))

    kam = kam_with(("first_plugin", First()), ("second_plugin", Second()))
    with pytest.raises(PluginError) as info:
        score(export_csv, kam)
    message = str(info.value)
    assert "'references'" in message and "'first_plugin'" in message and "'second_plugin'" in message
    assert info.value.exit_code == 7


def test_a_criterion_named_like_a_builtin_is_refused_naming_the_scorecard(export_csv):
    class Copycat:
        @hookimpl
        def register_criteria(self, register):
            register(criterion("need", 1, column="need_clarity"))

    with pytest.raises(PluginError, match=r"'need'.*'scorecard'.*'copycat'|'need'.*'copycat'.*'scorecard'"):
        score(export_csv, kam_with(("copycat", Copycat())))


@pytest.mark.parametrize("hook, record, builtin", [
    ("register_writers", Writer(name="csv", extensions=(".csv",), sink=lambda frame, path: None), "writers"),
    ("register_importers", Importer(name="csv", read=lambda path, options: None, sniff=lambda head, suffix: 0),
     "csv_importer"),
])
def test_duplicate_importer_and_writer_names_name_both_plugins(hook, record, builtin):
    plugin = type("Dup", (), {hook: hookimpl(lambda self, register: register(record))})()
    kam = kam_with(("dup_plugin", plugin))
    collect = kam.writers if hook == "register_writers" else kam.importers
    with pytest.raises(PluginError) as info:
        collect()
    assert f"'{builtin}'" in str(info.value) and "'dup_plugin'" in str(info.value)


def test_duplicate_win_model_names_name_both_plugins():
    def build(**params):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(**params)

    class A:
        @hookimpl
        def register_win_models(self, register):
            register(WinModel(name="logit", build=build))

    class B:
        @hookimpl
        def register_win_models(self, register):
            register(WinModel(name="logit", build=build))

    with pytest.raises(PluginError) as info:
        kam_with(("model_a", A()), ("model_b", B())).win_models()
    assert "'logit'" in str(info.value) and "'model_a'" in str(info.value) and "'model_b'" in str(info.value)


def test_a_config_section_registered_twice_names_both_plugins():
    class Again:
        @hookimpl
        def register_config_defaults(self, register):
            register("scorecard", "[scorecard]\nweak_share = 0.5\n")

    with pytest.raises(PluginError) as info:
        kam_with(("again", Again())).config_defaults()
    assert "[scorecard]" in str(info.value) and "'scorecard'" in str(info.value) and "'again'" in str(info.value)


def test_registering_something_else_than_the_record_type_names_the_plugin():
    class Sloppy:
        @hookimpl
        def register_writers(self, register):
            register({"name": "tsv"})

    with pytest.raises(PluginError, match=r"plugin 'sloppy' registered .* expected a Writer"):
        kam_with(("sloppy", Sloppy())).writers()


def test_a_plugin_name_can_only_be_registered_once():
    class Other:
        @hookimpl
        def score(self, batch):
            return None

    kam = Kam(load_entry_points=True)
    with pytest.raises(PluginError, match="'scorecard'"):
        kam.register(Other(), "scorecard")


# -- column clashes -----------------------------------------------------------------------------


def _returns(hook: str, frame_of_batch):
    return type("P", (), {hook: hookimpl(lambda self, batch: frame_of_batch(batch))})()


@pytest.mark.parametrize("hook", ["score", "qualify"])
def test_two_plugins_returning_the_same_column_are_both_named(hook, export_csv):
    same = lambda batch: pl.DataFrame({"priority": pl.Series([1] * batch.height, dtype=pl.Int64)})  # noqa: E731
    kam = kam_with(("alpha", _returns(hook, same)), ("beta", _returns(hook, same)))
    with pytest.raises(PluginError) as info:
        score(export_csv, kam)
    message = str(info.value)
    assert "'priority'" in message and "'alpha'" in message and "'beta'" in message and hook in message


def test_a_batch_column_returned_again_is_refused_naming_the_plugin(export_csv):
    again = lambda batch: batch.select("total_score")  # noqa: E731
    with pytest.raises(PluginError, match=r"plugin 'again' returned column 'total_score' from score"):
        score(export_csv, kam_with(("again", _returns("score", again))))


def test_a_batch_hook_returning_the_wrong_number_of_rows_is_refused(export_csv):
    short = lambda batch: pl.DataFrame({"extra": [1] * (batch.height + 1)})  # noqa: E731
    with pytest.raises(PluginError, match=r"plugin 'short' returned \d+ rows from score for a batch of \d+"):
        score(export_csv, kam_with(("short", _returns("score", short))))


def test_a_batch_hook_returning_something_else_than_a_frame_is_refused(export_csv):
    wrong = lambda batch: {"extra": [1] * batch.height}  # noqa: E731
    with pytest.raises(PluginError, match=r"plugin 'wrong' returned dict from qualify"):
        score(export_csv, kam_with(("wrong", _returns("qualify", wrong))))


def test_two_plugins_adding_the_same_score_expression_are_both_named(export_csv):
    class Banding:
        @hookimpl
        def score_columns(self):
            return {"band": pl.lit("Z")}

    with pytest.raises(PluginError) as info:
        score(export_csv, kam_with(("banding", Banding())))
    assert "'band'" in str(info.value) and "'scorecard'" in str(info.value) and "'banding'" in str(info.value)


@pytest.mark.parametrize("column", ["total_score", "worth_score", "p1_need", "unknown_criteria", "win_probability"])
def test_a_score_expression_may_not_replace_a_core_column(column, export_csv):
    """score_columns "may not refer to each other", and a clash "is an error": overwriting the core's
    own score columns must be refused like the batch hooks refuse it, not silently win (or crash in polars)."""
    class Overwrite:
        @hookimpl
        def score_columns(self):
            return {column: pl.lit(0.0)}

    with pytest.raises(PluginError) as info:
        score(export_csv, kam_with(("overwrite", Overwrite())))
    assert f"'{column}'" in str(info.value) and "'overwrite'" in str(info.value)


def _qualify_columns(result):
    return type("Q", (), {"qualify_columns": hookimpl(lambda self: result)})()


def test_two_plugins_adding_the_same_qualification_column_are_both_named(export_csv):
    kam = kam_with(("alpha", _qualify_columns({"gate": pl.lit(1)})),
                   ("beta", _qualify_columns([{"__beta": pl.lit(2)}, {"gate": pl.col("__beta")}])))
    with pytest.raises(PluginError, match=r"qualification column 'gate' is added by plugin '(alpha|beta)' and by "
                                          r"plugin '(alpha|beta)'") as info:
        score(export_csv, kam)
    assert "'alpha'" in str(info.value) and "'beta'" in str(info.value)
    with pytest.raises(PluginError, match=r"'missing' is added by plugin 'own' and by plugin 'qualification'"):
        score(export_csv, kam_with(("own", _qualify_columns({"missing": pl.lit(None, pl.String)}))))  # called first


@pytest.mark.parametrize("column, message", [
    ("budget_status", "which the batch already has"),  # a normalised column of the export
    ("total_score", "which is a score column"),
    ("p4_budget", "which is a score column"),
    ("band", "which is a score column"),  # the scorecard's score_columns
])
def test_a_qualification_expression_may_not_replace_a_column(column, message, export_csv):
    with pytest.raises(PluginError, match=rf"plugin 'over' returned column '{column}' from qualify_columns, {message}"):
        score(export_csv, kam_with(("over", _qualify_columns([{}, {column: pl.lit(0.0)}]))))


def test_the_qualify_hook_may_not_return_a_qualify_columns_column(export_csv):
    again = lambda batch: batch.select("gate")  # noqa: E731
    with pytest.raises(PluginError, match=r"plugin 'again' returned column 'gate' from qualify, which the "
                                          r"batch already has"):
        score(export_csv, kam_with(("gate", _qualify_columns({"gate": pl.lit(1)})),
                                   ("again", _returns("qualify", again))))


@pytest.mark.parametrize("result, message", [
    ("gate", r"returned str from qualify_columns, expected a dict"),
    ([{"gate": pl.lit(1)}, "next"], r"returned list from qualify_columns, expected a dict"),
    ({"gate": 1}, r"returned 'gate': int from qualify_columns, expected a column name and a polars expression"),
])
def test_qualify_columns_returning_something_else_is_refused(result, message, export_csv):
    with pytest.raises(PluginError, match=rf"plugin 'odd' {message}"):
        score(export_csv, kam_with(("odd", _qualify_columns(result))))


# -- errors inside hooks ------------------------------------------------------------------------


class Boom(RuntimeError):
    pass


def _raising(hook: str, args: str):
    namespace: dict = {}
    exec(f"def {hook}(self, {args}):\n    raise Boom('{hook} went wrong')", {"Boom": Boom}, namespace)
    return type("Raising", (), {hook: hookimpl(namespace[hook])})()


@pytest.mark.parametrize("hook, args", [
    ("register_criteria", "register, config"),
    ("register_config_defaults", "register"),
    ("qualify", "batch, config"),
    ("qualify_columns", "config, columns"),
    ("score", "batch"),
    ("score_columns", "config, criteria"),
    ("win_probability", "criteria"),
])
def test_an_exception_in_a_hook_is_a_plugin_error_naming_the_plugin(hook, args, export_csv):
    kam = kam_with(("fragile", _raising(hook, args)))
    with pytest.raises(PluginError) as info:
        score(export_csv, kam)
    assert str(info.value).startswith(f"plugin 'fragile' failed in hook {hook}: Boom: {hook} went wrong")
    assert isinstance(info.value.__cause__, Boom)
    assert isinstance(info.value, KamError) and info.value.exit_code == 7


def test_an_exception_in_a_registry_hook_names_the_plugin():
    for hook, call in [("register_importers", Kam.importers), ("register_writers", Kam.writers),
                       ("register_win_models", Kam.win_models)]:
        kam = kam_with(("fragile", _raising(hook, "register")))
        with pytest.raises(PluginError, match=f"^plugin 'fragile' failed in hook {hook}: Boom"):
            call(kam)
    kam = kam_with(("fragile", _raising("register_commands", "cli")))
    with pytest.raises(PluginError, match="^plugin 'fragile' failed in hook register_commands: Boom"):
        kam.add_commands(cli)
    kam = kam_with(("fragile", _raising("classify_stakeholders", "stakeholders")))
    with pytest.raises(PluginError, match="^plugin 'fragile' failed in hook classify_stakeholders: Boom"):
        kamcore.classify_stakeholders(pl.DataFrame({"姓名": ["张三"], "角色": ["教练"]}), kam=kam)


def test_a_batch_hook_failing_mid_stream_names_the_plugin(export_csv, tmp_path):
    """Called on the empty probe first, then inside the streaming engine: the error still names the plugin."""
    class LateFailure:
        @hookimpl
        def score(self, batch):
            if batch.height:
                raise Boom("only real rows fail")
            return pl.DataFrame({"late": pl.Series([], dtype=pl.Int64)})

    kam = kam_with(("late", LateFailure()))
    with pytest.raises(PluginError, match="^plugin 'late' failed in hook score: Boom: only real rows fail"):
        run_score([export_csv], tmp_path / "out.csv", kam=kam, config=load_config(None, kam.config_defaults()))
    assert not (tmp_path / "out.csv").exists()
    with pytest.raises(PluginError, match="^plugin 'late' failed in hook score"):
        score(export_csv, kam)


def test_a_kam_error_raised_by_a_plugin_is_passed_through_unchanged(export_csv):
    from kamcore.errors import ConfigError

    class Strict:
        @hookimpl
        def register_criteria(self, config):
            raise ConfigError("[strict] needs a threshold")

    with pytest.raises(ConfigError, match=r"^\[strict\] needs a threshold$"):
        score(export_csv, kam_with(("strict", Strict())))


# -- misspelt hooks -----------------------------------------------------------------------------


def test_a_misspelt_hook_fails_check_naming_the_plugin():
    class Typo:
        @hookimpl
        def scor(self, batch, config):
            return None

    kam = Kam(load_entry_points=True)
    kam.register(Typo(), "typo")  # pluggy accepts it until check_pending()
    with pytest.raises(PluginError) as info:
        kam.check()
    assert "'typo'" in str(info.value) and "scor" in str(info.value)
    assert "docs/plugins.md" in (info.value.hint or "")


def test_a_hook_asking_for_an_unknown_argument_is_refused_at_registration():
    class WrongArgument:
        @hookimpl
        def score(self, batch, settings):
            return None

    kam = Kam(load_entry_points=True)
    with pytest.raises(PluginError, match=r"(?s)plugin 'wrong_argument' cannot be registered: .*settings"):
        kam.register(WrongArgument(), "wrong_argument")


# -- kam plugins --------------------------------------------------------------------------------


def test_kam_plugins_hook_filter_with_clirunner():
    result = CliRunner().invoke(cli, ["plugins", "--all", "--hook", "register_criteria"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows == [{"name": "scorecard", "version": kamcore.__version__, "builtin": True,
                     "hooks": ["register_column_labels", "register_config_defaults", "register_criteria",
                               "score_columns", "win_probability"]},
                    {"name": "win_block", "version": kamcore.__version__, "builtin": True,
                     "hooks": ["register_column_labels", "register_config_defaults", "register_criteria",
                               "score_columns"]}]


def test_kam_plugins_without_all_hides_builtins_with_clirunner():
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0 and json.loads(result.stdout) == []
    result = CliRunner().invoke(cli, ["plugins", "--all", "--hook", "no_such_hook"])
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_kam_plugins_clirunner_follows_the_switches(monkeypatch):
    monkeypatch.setenv("KAM_DISABLE_PLUGINS", "scorecard,win_block")
    result = CliRunner().invoke(cli, ["plugins", "--all", "--hook", "register_criteria"])
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def _kam_subprocess(*args: str, **env: str) -> subprocess.CompletedProcess:
    import os

    environ = {k: v for k, v in os.environ.items() if not k.startswith("KAM_")}
    environ.update(env)
    return subprocess.run([sys.executable, "-c", "from kamcore.cli import main; main()", *args],
                          capture_output=True, text=True, env=environ, timeout=60)


def test_kam_plugins_hook_filter_in_a_subprocess():
    result = _kam_subprocess("plugins", "--all", "--hook", "register_criteria")
    assert result.returncode == 0, result.stderr
    in_process = CliRunner().invoke(cli, ["plugins", "--all", "--hook", "register_criteria"])
    assert json.loads(result.stdout) == json.loads(in_process.stdout)
    assert [r["name"] for r in json.loads(result.stdout)] == ["scorecard", "win_block"]

    result = _kam_subprocess("plugins", "--all", "--hook", "classify_stakeholders")
    assert [r["name"] for r in json.loads(result.stdout)] == ["stakeholders"]
    result = _kam_subprocess("plugins", "--all", KAM_LOAD_PLUGINS="writers,csv_importer")
    assert [r["name"] for r in json.loads(result.stdout)] == ["csv_importer", "writers"]
