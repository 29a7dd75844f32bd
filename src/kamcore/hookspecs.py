"""The hook contract between the kamcore core and its plugins.

Every hook is called with keyword arguments; a plugin asks only for the arguments it needs, so new
arguments can be added to a spec without breaking old plugins. Batch hooks receive a polars
``DataFrame`` of canonical columns (docs/schema.md), never single rows. The full reference with
runnable examples is docs/plugins.md.
"""

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("kamcore")
hookimpl = HookimplMarker("kamcore")  # the same marker as kamcore.hookimpl


# -- registries: called once per run, the core validates what is added ------------------------


@hookspec
def register_importers(register):
    """Add readers for input files.

    :param register: call ``register(Importer(...))`` once per importer; a duplicate name is an error.
    """


@hookspec
def register_writers(register):
    """Add writers for output formats.

    :param register: call ``register(Writer(...))`` once per output format; a duplicate name is an error.
    """


@hookspec
def register_criteria(register, config):
    """Add scorecard criteria: each one turns canonical columns into points with a polars expression.

    :param register: call ``register(Criterion(...))``; a duplicate name or points column is an error.
    :param config: the effective :class:`kamcore.config.Config` (defaults merged with kam.toml).
    """


@hookspec
def register_profiles(register):
    """Add CRM export profiles (``kam score --profile NAME``, auto-detected from headers).

    :param register: call ``register(Profile(...))`` once per CRM; a duplicate name is an error.
    """


@hookspec
def register_win_models(register):
    """Add win-probability estimators that ``kam train`` can fit.

    :param register: call ``register(WinModel(name=..., build=...))``; ``build(**params)`` returns an
        unfitted scikit-learn classifier.
    """


@hookspec
def register_column_labels(register, config):
    """Name the output columns this plugin adds in Chinese and English, for the workbook's column guide
    (列说明) and ``kam columns``.

    :param register: call ``register(ColumnLabel(name, label_zh, label_en, meaning))`` once per column; a
        column labelled twice is an error. The core labels the schema's columns, the criteria's points and
        the scores itself: a label for one of those is not used.
    :param config: the effective :class:`kamcore.config.Config` (a meaning may quote a setting).
    """


@hookspec
def register_config_defaults(register):
    """Add a plugin's default settings, shown by ``kam init`` and overridable in kam.toml.

    :param register: call ``register(section, toml_text)``; ``toml_text`` is commented TOML whose
        tables all live under ``[section]``. A section registered twice is an error.
    """


@hookspec
def register_commands(cli):
    """Add subcommands to the ``kam`` command group.

    :param cli: the root ``click.Group``; call ``cli.command()`` or ``cli.add_command(...)``.
    """


# -- batch hooks: called for every batch of rows ----------------------------------------------


@hookspec
def qualify(batch, config):
    """Qualify opportunities (资格审查) in Python, for a whole batch (``qualify_columns`` is the faster path).

    :param batch: a polars ``DataFrame`` of normalised canonical columns (and the ``qualify_columns`` columns),
        one row per opportunity.
    :param config: the effective :class:`kamcore.config.Config`.
    :returns: ``None``, or a ``DataFrame`` of *new* columns with ``batch.height`` rows, in batch order.
        Columns from all plugins are merged; a name clash with the batch or another plugin is an error.
    """


@hookspec
def qualify_columns(config, columns):
    """Qualify opportunities with polars expressions, evaluated inside the streaming query (the fast path).

    Called once per run, before streaming. The expressions see the normalised columns of the batch, and the
    ``summarise_stakeholders`` columns when stakeholders are given; they run before the ``qualify`` hook and
    the criteria, which see their columns.

    :param config: the effective :class:`kamcore.config.Config`.
    :param columns: a ``frozenset`` of the column names the batch has (an export may lack any column).
    :returns: ``None``, a dict {new column name: polars expression}, or a list of such dicts: steps applied in
        order, each one seeing the columns of the earlier ones (the expressions of one step are evaluated side
        by side and may not refer to each other; a plugin reads only the batch and its own steps). Columns
        whose name starts with ``__`` are temporary and dropped after the last step. A name the batch already
        has, a score column's name, or a name another plugin returns is an error naming the plugin(s).
    """


@hookspec(firstresult=True)
def classify_stakeholders(stakeholders, config):
    """Classify the people on a deal: role, style, stance, influence.

    Stops at first non-None result; the built-in classifier is ``trylast`` so a plugin can replace it.

    :param stakeholders: a polars ``DataFrame`` of canonical stakeholder columns, one row per person.
    :param config: the effective :class:`kamcore.config.Config`.
    :returns: the classified ``DataFrame`` (same rows, in the same order), or ``None`` to pass.
    """


@hookspec
def summarise_stakeholders(stakeholders, config):
    """Sum up the classified people of each deal into per-opportunity columns (coverage, red flags).

    Called once per run when stakeholders are given. The core joins the columns onto every opportunity
    by ``opportunity_id`` inside the streaming query, before qualification (``qualify_columns``, ``qualify``) and
    the criteria, so they all see them.

    :param stakeholders: the classified polars ``DataFrame`` (the ``classify_stakeholders`` result).
    :param config: the effective :class:`kamcore.config.Config`.
    :returns: ``None``, or a ``DataFrame`` with an ``opportunity_id`` column, at most one row per id, and new
        columns. A row whose ``opportunity_id`` is null gives the values for opportunities with no people
        listed. Columns from all plugins are merged; a name clash with the opportunities or another
        plugin is an error, and so is a personal field (name, birthday …).
    """


@hookspec
def score(batch, config):
    """Add score columns computed in Python for a whole batch (criteria are the faster path).

    :param batch: a polars ``DataFrame`` of normalised canonical columns plus the scorecard's columns.
    :param config: the effective :class:`kamcore.config.Config`.
    :returns: ``None``, or a ``DataFrame`` of *new* columns with ``batch.height`` rows, in batch order.
        Columns from all plugins are merged; a name clash with the batch or another plugin is an error.
    """


@hookspec
def score_columns(config, criteria):
    """Add score columns as polars expressions, evaluated once per batch inside the streaming query.

    Called once per run. The expressions see the normalised columns, the qualification columns, each
    criterion's points column, ``<block>_score``, ``total_score`` and ``unknown_criteria``; they may not refer
    to each other.

    :param config: the effective :class:`kamcore.config.Config`.
    :param criteria: the registered :class:`kamcore.registry.Criterion` records, in scorecard order.
    :returns: ``None``, or a dict {column name: polars expression}. A name clash is an error naming both plugins.
    """


@hookspec(firstresult=True)
def win_probability(config, criteria):
    """Give the expression that turns a scored batch into ``win_probability`` (0 to 1).

    Stops at first non-None result; the scorecard's documented logistic mapping is ``trylast``, so a
    win-model plugin overrides it.

    :param config: the effective :class:`kamcore.config.Config`.
    :param criteria: the registered :class:`kamcore.registry.Criterion` records, in scorecard order.
    :returns: a polars expression evaluated on the scored batch, or ``None`` to pass.
    """


@hookspec
def report_run(config, columns):
    """Add to the run summary what this plugin used or noticed: a model's file and hash, inputs it missed.

    Called once per ``kam score`` run, in the process that runs kam, after every row is scored and before any
    file is replaced.

    :param config: the effective :class:`kamcore.config.Config`.
    :param columns: the names of the columns scoring sees in a full run (``--scores-only`` or not), in order:
        the export's (canonical names, others under their own, personal ones left out), the columns the
        normaliser and the stakeholder summary add, then the criteria's inputs the export lacks (read as empty;
        the summary's notes name them).
    :returns: ``None``, or a dict of JSON values (str keys; str, number, bool, None, lists and dicts of them),
        written to the summary's ``reports`` under the plugin's name; a ``notes`` list of strings in it is added
        to the summary's ``notes`` too. The summary is a log: no personal data.
    """
