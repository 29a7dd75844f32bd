"""kamcore: is the deal real, is it worth winning, how likely is it to close.

The public API is small and imported lazily, so ``import kamcore`` (and ``kam --help``) stays fast:

- :func:`score_frame` scores a polars or pandas data frame of opportunities;
- :func:`score_one` scores one opportunity given as a dict;
- :data:`hookimpl` marks plugin hook implementations.
"""

from importlib.metadata import PackageNotFoundError, version

from pluggy import HookimplMarker

try:
    __version__ = version("kamcore")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

hookimpl = HookimplMarker("kamcore")

__all__ = ["__version__", "hookimpl", "score_frame", "score_one", "classify_stakeholders", "ScoreResult"]


def __getattr__(name):
    if name in ("score_frame", "score_one", "classify_stakeholders", "ScoreResult"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'kamcore' has no attribute {name!r}")
