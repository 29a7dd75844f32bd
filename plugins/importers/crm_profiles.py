"""CRM profiles (``kam score --profile salesforce|hubspot|generic``), as data.

Each profile is a TOML file beside this module (``profiles/<name>.toml``): a ``[profile]`` table that
says how to recognise the CRM's exports, and kam.toml tables (``[columns]``, ``[values.<column>]``,
``[dates]``) that map its columns, stage codes and date order onto the canonical schema. The user's
kam.toml wins over a profile. ``generic`` maps nothing beyond the built-in headers and never detects.
A third party adds a CRM the same way: register a :class:`kamcore.registry.Profile`.
"""

from __future__ import annotations

import tomllib
from importlib import resources

from kamcore import hookimpl


@hookimpl
def register_profiles(register):
    from kamcore.profiles import profile_from_toml
    from kamcore.registry import Profile

    folder = resources.files(__package__) / "profiles"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
            register(profile_from_toml(data, entry.name.removesuffix(".toml"), f"profiles/{entry.name}"))
    register(Profile(name="generic", label="generic export", config={},
                     description="no CRM: the built-in headers and your kam.toml only; no detection"))
