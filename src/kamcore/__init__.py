"""kamcore: is the deal real, is it worth winning, how likely is it to close.

The public API is small and imported lazily, so ``import kamcore`` (and ``kam --help``) stays fast:

- :func:`score_frame` scores a polars or pandas data frame of opportunities;
- :func:`score_one` scores one opportunity given as a dict;
- :func:`validate_frame` lists every problem in a frame at once;
- :func:`column_guide` says what each output column is called in Chinese and English, and what it holds;
- :class:`Opportunity`, :class:`Stakeholder`, :class:`Problem`: frozen records of the schema;
- :data:`hookimpl` marks plugin hook implementations.
"""

from pluggy import HookimplMarker

hookimpl = HookimplMarker("kamcore")

_API = ("score_frame", "score_one", "validate_frame", "classify_stakeholders", "stakeholder_coverage", "column_guide",
        "ScoreResult")
_RECORDS = ("Opportunity", "Stakeholder", "Problem")
__all__ = ["__version__", "hookimpl", *_API, *_RECORDS]


def _version() -> str:
    """The installed distribution's version, looked up on first use (importlib.metadata costs start-up)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kamcore")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


def __getattr__(name):
    if name == "__version__":
        value = globals()["__version__"] = _version()
        return value
    if name in _API:
        from . import api

        return getattr(api, name)
    if name in _RECORDS:
        from . import records

        return getattr(records, name)
    raise AttributeError(f"module 'kamcore' has no attribute {name!r}")
