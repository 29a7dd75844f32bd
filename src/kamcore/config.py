"""kam.toml: the core's defaults, each plugin's registered defaults, and the user's file on top.

The effective configuration is one nested dict; its sha256 (over canonical JSON) goes into every run
summary so a score can be traced to the rules that produced it. Rules are data: nothing in a
configuration is ever evaluated as code.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from pathlib import Path
from typing import Any

from attrs import field, frozen

from .errors import ConfigError

CORE_DEFAULTS = """\
# kam.toml: settings for kamcore. Every key is optional; delete what you do not change.

[currency]
default = "CNY"          # currency of amounts that name none (120万 with no 美元/US$)
base = "CNY"             # deal sizes are converted to this to compare them (deal_size_base)

[currency.rates]         # units of the base currency per unit of each currency; update to your rates
USD = 7.2
EUR = 7.8
HKD = 0.92
GBP = 9.1
JPY = 0.048

[dates]
order = ""               # dates written day/month/year: "dmy" (05/06/2024 = 5 June) or "mdy" (= May 6);
                         # "" refuses a date that reads both ways. Year-first dates never need it.

[columns]                # your export's header = canonical column (docs/schema.md lists them)
# "Kundenname" = "account"
# "Expected budget" = "budget_status"

[values]                 # [values.<column>] your value = canonical code ("" means missing)
# [values.budget_status]
# "TBD" = "none"
"""


def deep_merge(base: dict, override: dict) -> dict:
    """A new dict: ``override`` on top of ``base``, merging tables recursively."""
    merged = dict(base)
    for k, v in override.items():
        merged[k] = deep_merge(merged[k], v) if isinstance(v, dict) and isinstance(merged.get(k), dict) else v
    return merged


def parse_toml(text: str, origin: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: invalid TOML: {exc}") from None


@frozen
class Config:
    """The effective configuration (read-only). ``path`` is the user's kam.toml, if any.

    ``layers`` keeps the defaults and the user's part apart, so a CRM profile found later (from an
    export's headers) goes between them: the user's kam.toml always wins over a profile.
    """

    data: dict[str, Any]
    path: Path | None = None
    layers: tuple[dict, dict] | None = field(default=None, eq=False, repr=False)
    profile: str | None = None

    def with_profile(self, name: str, settings: dict) -> Config:
        """This configuration with a profile's settings under the user's own."""
        if self.layers is None:  # built by hand, not by load_config: the profile goes on top
            return Config(deep_merge(self.data, settings), self.path, None, name)
        defaults, user = self.layers
        return Config(deep_merge(deep_merge(defaults, settings), user), self.path, self.layers, name)

    def get(self, key: str, default=None):
        return self.data.get(key, default)

    def section(self, name: str) -> dict[str, Any]:
        """One top-level table, ``{}`` when absent."""
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"[{name}] in kam.toml must be a table")
        return value

    @property
    def sha256(self) -> str:
        blob = json.dumps(self.data, sort_keys=True, ensure_ascii=False, default=str).encode()
        return hashlib.sha256(blob).hexdigest()


def find_config(explicit: str | os.PathLike | None) -> Path | None:
    """``--config``, else ``$KAM_CONFIG``, else ``./kam.toml`` when it exists."""
    if explicit:
        return Path(explicit)
    if os.environ.get("KAM_CONFIG"):
        return Path(os.environ["KAM_CONFIG"])
    local = Path("kam.toml")
    return local if local.is_file() else None


def load_config(path: str | os.PathLike | None, defaults: dict[str, str] | None = None,
                overrides: dict | None = None) -> Config:
    """Merge the core defaults, the plugins' defaults (section -> TOML text) and the user's file."""
    data = parse_toml(CORE_DEFAULTS, "core defaults")
    for section, text in (defaults or {}).items():
        data = deep_merge(data, parse_toml(text, f"defaults of [{section}]"))
    base, user = data, {}
    found = find_config(path)
    if found is not None:
        try:
            text = found.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {found}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {found}: {exc}") from None
        user = parse_toml(text, str(found))
    if overrides:
        user = deep_merge(user, overrides)
    data = deep_merge(base, user)
    for table in ("columns", "values", "currency", "dates"):
        if not isinstance(data.get(table, {}), dict):
            raise ConfigError(f"[{table}] in kam.toml must be a table")
    return Config(data=data, path=found, layers=(base, user))


def default_config_text(defaults: dict[str, str]) -> str:
    """The commented kam.toml that ``kam init`` writes: core defaults, then each plugin's section."""
    parts = [CORE_DEFAULTS.rstrip()]
    parts += [text.rstrip() for _, text in sorted(defaults.items())]
    return "\n\n".join(parts) + "\n"
