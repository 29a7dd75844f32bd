"""Errors a user can act on, each with the exit code `kam` returns for it.

The CLI turns a :class:`KamError` into one line on stderr and its exit code; anything else is a bug
and is reported as such (exit 1). Library users catch :class:`KamError`.
"""


class KamError(Exception):
    """Base class: a problem the user can fix. ``exit_code`` is what `kam` exits with."""

    exit_code = 1
    kind = "error"

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message

    def __reduce__(self):
        # keeps the hint when the error travels back from a Dask worker (pickling passes args only)
        return _rebuild, (type(self), self.message, self.hint)


def _rebuild(kind: type, message: str, hint: str | None) -> "KamError":
    return kind(message, hint=hint)


class ConfigError(KamError):
    """kam.toml or an option is invalid."""

    exit_code = 3
    kind = "config error"


class InputError(KamError):
    """An input file cannot be read at all (missing, undecodable, not a table)."""

    exit_code = 4
    kind = "unreadable input"


class DataError(KamError):
    """The input was read but its rows cannot be accepted (e.g. more rejects than --max-rejects)."""

    exit_code = 5
    kind = "data error"


class OutputError(KamError):
    """The output cannot be written (permissions, a file held open by another program, a full disk)."""

    exit_code = 6
    kind = "output error"


class PluginError(KamError):
    """A plugin misbehaved: failed to load in strict mode, raised inside a hook, or broke the contract."""

    exit_code = 7
    kind = "plugin error"


class EngineError(KamError):
    """The Dask engine cannot run: dask is not installed, the scheduler cannot be reached, or workers were lost."""

    exit_code = 8
    kind = "engine error"


class ReadAgain(KamError):
    """An importer's deferred whole-file check (``Source.verify``) found records to quarantine, which the
    stream had already read as rows: the run starts over with the checks done first. Never reaches a user."""


EXIT_CODES = {
    0: "success: every row was scored or written to the rejects file",
    1: "internal error: a bug in kam (run with --debug and report the traceback)",
    2: "usage error: unknown option or missing argument",
    ConfigError.exit_code: "config error: kam.toml or an option value is invalid",
    InputError.exit_code: "unreadable input: a file is missing, empty, undecodable or not a table, or a model "
                          "file fails its checks",
    DataError.exit_code: "data error: more rejected rows than --max-rejects allows (no output written)",
    OutputError.exit_code: "output error: the output or rejects file cannot be written",
    PluginError.exit_code: "plugin error: a plugin failed to load (strict mode) or raised inside a hook",
    EngineError.exit_code: "engine error: --engine dask cannot run (dask not installed, scheduler unreachable, "
                           "workers lost); no output written",
    130: "interrupted (Ctrl-C or SIGTERM): the previous output, if any, is left untouched and no temporary "
         "file stays (a Ctrl-C once the command has ended, while Python exits, is ignored)",
}
