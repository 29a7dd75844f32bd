"""CRM profiles: each system's columns, stage codes, date order and currency columns, as settings.

A profile is a kam.toml-shaped table registered by a plugin (``register_profiles``) or read from a
file (``--profile my_crm.toml``). It goes *under* the user's kam.toml, so a user's mapping always wins.
Without ``--profile``, the headers of the first input choose one: the profile whose ``detect`` headers
the file has most of (at least ``min_matches``); ``--profile generic`` turns detection off.
"""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

from .errors import ConfigError
from .headers import header_key
from .registry import Profile

GENERIC = "generic"
log = logging.getLogger("kamcore.profiles")


def load_profile_file(path: Path) -> Profile:
    """A profile from a TOML file: ``[profile]`` (label, detect, min_matches) plus kam.toml tables."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError(f"profile file not found: {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read profile {path}: {exc}") from None
    return profile_from_toml(data, default_name=path.stem, origin=str(path))


def profile_from_toml(data: dict, default_name: str, origin: str) -> Profile:
    """Build a :class:`Profile` from parsed TOML; a malformed ``[profile]`` table is a config error."""
    meta = data.pop("profile", {})
    if not isinstance(meta, dict):
        raise ConfigError(f"{origin}: [profile] must be a table")
    name = str(meta.get("name", default_name)).lower().replace("-", "_")
    detect = meta.get("detect", [])
    if not isinstance(detect, list) or not all(isinstance(h, str) for h in detect):
        raise ConfigError(f"{origin}: [profile] detect must be a list of headers")
    try:
        return Profile(name=name, label=str(meta.get("label", name)), config=data, detect=tuple(detect),
                       min_matches=int(meta.get("min_matches", 3)), description=str(meta.get("description", "")))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{origin}: {exc}") from None


def detect_profile(profiles, headers: list[str]) -> tuple[Profile | None, int]:
    """The profile whose identifying headers the file has most of, with how many it matched."""
    keys = {header_key(h) for h in headers}
    best, best_hits = None, 0
    for profile in profiles:
        hits = sum(header_key(h) in keys for h in profile.detect)
        if profile.detect and hits >= profile.min_matches and hits > best_hits:
            best, best_hits = profile, hits
    return best, best_hits


def choose_profile(profiles, requested: str | None, headers: list[str]) -> tuple[Profile | None, str | None]:
    """(profile, note) for ``--profile requested`` (a name, a .toml file, or None to detect)."""
    if requested is None:
        found, hits = detect_profile(profiles, headers)
        if found is None:
            return None, None
        return found, (f"detected a {found.label} export ({hits} of its headers): using --profile {found.name} "
                       f"(--profile {GENERIC} turns this off)")
    if requested.lower().endswith(".toml"):
        return load_profile_file(Path(requested)), None
    name = requested.lower().replace("-", "_")
    if name == GENERIC:
        return (profiles[GENERIC] if GENERIC in profiles else None), None
    if name not in profiles:
        known = ", ".join(sorted({GENERIC, *(p.name for p in profiles)}))
        raise ConfigError(f"unknown profile {requested!r}: expected one of {known}, or a .toml file",
                          hint="kam plugins --hook register_profiles lists the plugins that add profiles")
    return profiles[name], None


def apply_profile(config, kam, requested: str | None, frame) -> tuple:
    """(config with the profile asked for, or detected from ``frame``'s headers, under the user's
    kam.toml; the note saying it was detected, as a list)."""
    import polars as pl

    try:
        headers = frame.collect_schema().names()
    except pl.exceptions.PolarsError:
        headers = []  # reading fails later with the importer's own message
    chosen, note = choose_profile(kam.profiles(), requested, headers)
    if chosen is None:
        return config, []
    if note:
        log.warning("%s", note)
    return config.with_profile(chosen.name, chosen.config), [note] if note else []
