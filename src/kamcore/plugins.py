"""Loading plugins, and a typed facade over pluggy so every hook call site is checked.

Plugins are found through the entry-point group ``kamcore``; the built-ins register there too.
Each entry point is loaded on its own: one that fails to import is reported by name and skipped
(``KAM_STRICT_PLUGINS=1`` re-raises). Switches:

- ``KAM_LOAD_PLUGINS=a,b``: load only these entry points (set but empty: load none);
- ``KAM_DISABLE_PLUGINS=a,b``: skip these;
- ``KAM_TRACE_PLUGINS=1``: log every hook call with its plugin and duration to stderr.

``Kam(env=...)`` reads the switches from another mapping than ``os.environ``: a Dask worker loads its
own plugins under the switches of the ``kam score`` that sent it work (:data:`SWITCHES`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

import pluggy

from . import hookspecs
from .errors import KamError, PluginError
from .registry import ColumnLabel, Criterion, Importer, Profile, Registry, Writer, WinModel

GROUP = "kamcore"
log = logging.getLogger("kamcore.plugins")


SWITCHES = ("KAM_LOAD_PLUGINS", "KAM_DISABLE_PLUGINS", "KAM_STRICT_PLUGINS", "KAM_TRACE_PLUGINS")


def switches() -> dict[str, str]:
    """This process's plugin switches (only those set), to load the same plugins in another process."""
    return {name: os.environ[name] for name in SWITCHES if name in os.environ}


def _names(env: Mapping[str, str], variable: str) -> set[str] | None:
    value = env.get(variable)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


class Kam:
    """The plugin manager of one kamcore session, with one typed method per hook."""

    def __init__(self, *, strict: bool | None = None, load_entry_points: bool = True,
                 env: Mapping[str, str] | None = None):
        self.env = os.environ if env is None else env
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.strict = strict if strict is not None else self.env.get("KAM_STRICT_PLUGINS") == "1"
        self.trace = self.env.get("KAM_TRACE_PLUGINS") == "1"
        self.failed: dict[str, str] = {}  # entry point name -> why it was not loaded
        self.versions: dict[str, str | None] = {}  # plugin name -> distribution version
        if load_entry_points:
            self._load_entry_points()

    # -- loading ----------------------------------------------------------------------------

    def _load_entry_points(self) -> None:
        allow, deny = _names(self.env, "KAM_LOAD_PLUGINS"), _names(self.env, "KAM_DISABLE_PLUGINS") or set()
        for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
            if (allow is not None and ep.name not in allow) or ep.name in deny:
                continue
            if self.pm.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not take the others down
                if self.strict:
                    raise PluginError(f"plugin {ep.name!r} failed to import: {type(exc).__name__}: {exc}") from exc
                self.failed[ep.name] = f"{type(exc).__name__}: {exc}"
                log.warning("plugin %r failed to import and was skipped: %s: %s", ep.name, type(exc).__name__, exc)
                continue
            self.register(plugin, ep.name, version=ep.dist.version if ep.dist else None)
        self.check()

    def register(self, plugin: Any, name: str, version: str | None = None) -> None:
        """Register a plugin object (a module or an instance with ``@hookimpl`` methods)."""
        try:
            self.pm.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise PluginError(f"plugin {name!r} cannot be registered: {exc}") from exc
        self.versions[name] = version

    def check(self) -> None:
        """Fail loudly on a hook implementation that matches no spec (a misspelt hook name)."""
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {self.pm.get_name(exc.plugin)!r} implements an unknown hook: {exc}",
                              hint="check the hook name against docs/plugins.md") from exc

    # -- calling ----------------------------------------------------------------------------

    def _impls(self, hook: str):
        """Implementations of a hook in pluggy's call order (tryfirst first, last registered first)."""
        return list(reversed(getattr(self.pm.hook, hook).get_hookimpls()))

    def call_each(self, hook: str, **kwargs) -> list[tuple[str, Any]]:
        """Call every implementation, naming the plugin in any error; [(plugin, result)], Nones dropped."""
        results = []
        for impl in self._impls(hook):
            value = self._call(hook, impl, kwargs)
            if value is not None:
                results.append((impl.plugin_name, value))
        return results

    def call_first(self, hook: str, **kwargs) -> tuple[str, Any] | tuple[None, None]:
        """Call implementations until one returns a value (``firstresult`` hooks)."""
        for impl in self._impls(hook):
            value = self._call(hook, impl, kwargs)
            if value is not None:
                return impl.plugin_name, value
        return None, None

    def has_impls(self, hook: str) -> bool:
        return bool(self._impls(hook))

    def _call(self, hook: str, impl, kwargs: dict) -> Any:
        args = {name: kwargs[name] for name in impl.argnames}
        start = time.perf_counter()
        try:
            return impl.function(**args)
        except KamError:
            raise
        except Exception as exc:
            raise PluginError(f"plugin {impl.plugin_name!r} failed in hook {hook}: {type(exc).__name__}: {exc}",
                              hint="run with --debug for the traceback") from exc
        finally:
            if self.trace:
                log.warning("hook %s plugin %s %.1f ms", hook, impl.plugin_name, 1000 * (time.perf_counter() - start))

    def _collect(self, hook: str, kind: type, **kwargs) -> Registry:
        registry = Registry(kind)
        for impl in self._impls(hook):
            self._call(hook, impl, {**kwargs, "register": registry.register_from(impl.plugin_name)})
        return registry

    # -- one method per hook ----------------------------------------------------------------

    def importers(self) -> Registry:
        return self._collect("register_importers", Importer)

    def writers(self) -> Registry:
        return self._collect("register_writers", Writer)

    def criteria(self, config) -> Registry:
        registry = self._collect("register_criteria", Criterion, config=config)
        columns: dict[str, str] = {}
        for criterion in registry:
            if criterion.column in columns:
                raise PluginError(f"criteria {columns[criterion.column]!r} and {criterion.name!r} both write "
                                  f"column {criterion.column!r}")
            columns[criterion.column] = criterion.name
        return registry

    def win_models(self) -> Registry:
        return self._collect("register_win_models", WinModel)

    def profiles(self) -> Registry:
        return self._collect("register_profiles", Profile)

    def column_labels(self, config) -> Registry:
        return self._collect("register_column_labels", ColumnLabel, config=config)

    def config_defaults(self) -> dict[str, str]:
        sections: dict[str, str] = {}
        owners: dict[str, str] = {}
        for impl in self._impls("register_config_defaults"):
            def register(section: str, text: str, plugin=impl.plugin_name):
                if section in sections:
                    raise PluginError(f"config section [{section}] is registered by plugin {owners[section]!r} "
                                      f"and by plugin {plugin!r}")
                sections[section], owners[section] = text, plugin
            self._call("register_config_defaults", impl, {"register": register})
        return sections

    def add_commands(self, cli) -> None:
        self.call_each("register_commands", cli=cli)

    def qualify(self, batch, config) -> list[tuple[str, Any]]:
        return self.call_each("qualify", batch=batch, config=config)

    def qualify_columns(self, config, columns: frozenset[str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """(steps, owners): the ``qualify_columns`` expressions of every plugin, the i-th step of each plugin in
        step i, and the plugin of each column. A name the batch has or two plugins return is an error."""
        import polars as pl

        steps: list[dict[str, Any]] = []
        owners: dict[str, str] = {}
        for plugin, result in self.call_each("qualify_columns", config=config, columns=columns):
            parts = [result] if isinstance(result, Mapping) else result
            if not isinstance(parts, list | tuple) or not all(isinstance(part, Mapping) for part in parts):
                raise PluginError(f"plugin {plugin!r} returned {type(result).__name__} from qualify_columns, "
                                  "expected a dict {column name: polars expression} or a list of such dicts")
            for index, part in enumerate(parts):
                if index == len(steps):
                    steps.append({})
                for name, expr in part.items():
                    if not isinstance(name, str) or not isinstance(expr, pl.Expr):
                        raise PluginError(f"plugin {plugin!r} returned {name!r}: {type(expr).__name__} from "
                                          "qualify_columns, expected a column name and a polars expression")
                    if name in columns:
                        raise PluginError(f"plugin {plugin!r} returned column {name!r} from qualify_columns, which "
                                          "the batch already has", hint="give the column another name")
                    if name in owners:
                        raise PluginError(f"qualification column {name!r} is added by plugin {owners[name]!r} and "
                                          f"by plugin {plugin!r}")
                    steps[index][name], owners[name] = expr, plugin
        return steps, owners

    def score(self, batch, config) -> list[tuple[str, Any]]:
        return self.call_each("score", batch=batch, config=config)

    def classify_stakeholders(self, stakeholders, config):
        return self.call_first("classify_stakeholders", stakeholders=stakeholders, config=config)[1]

    def classifier(self, stakeholders, config) -> tuple[str | None, Any]:
        """(plugin that answered, classified frame) of ``classify_stakeholders``; (None, None) if none did."""
        return self.call_first("classify_stakeholders", stakeholders=stakeholders, config=config)

    def summarise_stakeholders(self, stakeholders, config) -> list[tuple[str, Any]]:
        return self.call_each("summarise_stakeholders", stakeholders=stakeholders, config=config)

    def score_columns(self, config, criteria) -> dict[str, Any]:
        from .registry import BLOCKS

        reserved = ({k.column for k in criteria} | {f"{b}_score" for b in BLOCKS}
                    | {"total_score", "unknown_criteria", "win_probability"})
        columns: dict[str, Any] = {}
        owners: dict[str, str] = {}
        for plugin, exprs in self.call_each("score_columns", config=config, criteria=criteria):
            for name, expr in dict(exprs).items():
                if name in reserved:
                    raise PluginError(f"plugin {plugin!r} returned score column {name!r} from score_columns, which "
                                      "the core computes itself", hint="give the column another name")
                if name in columns:
                    raise PluginError(f"score column {name!r} is added by plugin {owners[name]!r} and by "
                                      f"plugin {plugin!r}")
                columns[name], owners[name] = expr, plugin
        return columns

    def win_probability(self, config, criteria):
        return self.call_first("win_probability", config=config, criteria=criteria)

    def report_run(self, config, columns: list[str]) -> tuple[dict[str, dict], list[str]]:
        """(reports by plugin, their notes) of the ``report_run`` hook; a report that is not a dict of JSON
        values, or notes that are not a list of strings, is an error naming the plugin."""
        import json

        reports: dict[str, dict] = {}
        notes: list[str] = []
        given_by = self.call_each("report_run", config=config, columns=list(columns))
        for plugin, report in sorted(given_by, key=lambda pair: pair[0]):  # by plugin name, as the summary lists them
            if not isinstance(report, Mapping) or not all(isinstance(key, str) for key in report):
                raise PluginError(f"plugin {plugin!r} returned {type(report).__name__} from report_run, expected "
                                  "a dict with str keys")
            try:
                report = json.loads(json.dumps(report, allow_nan=False))  # a copy of plain JSON values
            except (TypeError, ValueError) as exc:
                raise PluginError(f"plugin {plugin!r} returned a report_run value that is not JSON: {exc}") from None
            given = report.get("notes", [])
            if not isinstance(given, list) or not all(isinstance(note, str) for note in given):
                raise PluginError(f"plugin {plugin!r} returned notes from report_run that are not a list of strings")
            reports[plugin] = report
            notes += given
        return reports, notes

    # -- introspection ----------------------------------------------------------------------

    def describe(self, include_all: bool = False, hook: str | None = None) -> list[dict]:
        """What ``kam plugins`` prints: name, version and hooks of each plugin, sorted by name.

        Without ``include_all`` the built-ins (module under ``kamcore_plugins``) are left out.
        """
        rows = []
        for name, plugin in self.pm.list_name_plugin():
            hooks = sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])
            if hook and hook not in hooks:
                continue
            module = getattr(plugin, "__name__", type(plugin).__module__)
            builtin = module.startswith("kamcore_plugins")
            if builtin and not include_all:
                continue
            rows.append({"name": name, "version": self.versions.get(name), "builtin": builtin, "hooks": hooks})
        for name, why in sorted(self.failed.items() if hook is None else ()):
            rows.append({"name": name, "version": None, "builtin": False, "hooks": [], "error": why})
        return sorted(rows, key=lambda r: r["name"])


_session: Kam | None = None


def get_kam() -> Kam:
    """The process-wide plugin manager, created on first use (never at import time)."""
    global _session
    if _session is None:
        _session = Kam()
    return _session


def reset() -> None:
    """Forget the loaded plugins (tests, or after changing KAM_* switches)."""
    global _session
    _session = None
