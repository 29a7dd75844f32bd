"""Saving a model with its card, and loading it safely.

A model is two files side by side: ``NAME.joblib`` (or ``NAME.skops``) and ``NAME.card.json`` (plus
``NAME.card.md`` for people). The card is plain JSON and holds the sha256 of the model file. Loading
reads the card, reads the model file's bytes once, and refuses them, before anything is unpickled,
when they are empty, shorter than the card says, not the card's sha256, not a pickle (or a skops
archive), or from a scikit-learn version other than the one that trained them. Only then are these
same bytes unpickled. A ``.skops`` file is loaded by skops, which builds only the types on an allow-list
and runs no code from the file.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

from attrs import frozen

from kamcore.errors import InputError

KIND = "kamcore-win-model"
CARD_VERSION = 1
FORMATS = {"joblib": ".joblib", "skops": ".skops"}
MAGIC = {"joblib": (b"\x80",), "skops": (b"PK\x03\x04",)}  # a pickle (protocol >= 2); a zip archive
# Types in our pipelines that skops does not trust by itself (checked with skops.io.get_untrusted_types).
# Anything else in a .skops file is refused.
TRUSTED_SKOPS_TYPES = frozenset({
    "numpy.dtype",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.model_selection._split.StratifiedKFold",
})
log = logging.getLogger("kamcore.models")


class ModelError(InputError):
    """A model file that kam refuses to load: no card, wrong hash, truncated, not a model, other versions."""

    kind = "model error"


@frozen
class LoadedModel:
    pipeline: object
    card: dict
    path: Path


def card_path(model: Path) -> Path:
    """``models/NAME.joblib`` -> ``models/NAME.card.json``."""
    stem = model.name[: -len(model.suffix)] if model.suffix in FORMATS.values() else model.name
    return model.with_name(stem + ".card.json")


def versions(fmt: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("kamcore", "scikit-learn", "numpy", "scipy", "polars", "joblib") + (("skops",) if fmt == "skops"
                                                                                    else ()):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def dump_bytes(pipeline, fmt: str) -> bytes:
    if fmt == "skops":
        import skops.io as sio

        return sio.dumps(pipeline)
    import joblib

    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer)
    return buffer.getvalue()


def save(pipeline, card: dict, target: Path, fmt: str) -> tuple[Path, Path, Path]:
    """Write the model file, then its card (JSON and Markdown) with the file's sha256. Returns the paths."""
    from .card import markdown

    if fmt not in FORMATS:
        raise ModelError(f"unknown model format {fmt!r}; use joblib or skops")
    model = target.with_name(target.name + FORMATS[fmt]) if target.suffix not in FORMATS.values() else \
        target.with_suffix(FORMATS[fmt])
    model.parent.mkdir(parents=True, exist_ok=True)
    data = dump_bytes(pipeline, fmt)
    card = {"kind": KIND, "card_version": CARD_VERSION, "model_file": model.name, "format": fmt,
            "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data),
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "versions": versions(fmt),
            **card}
    json_path, md_path = card_path(model), card_path(model).with_suffix(".md")
    for path, content in ((model, data), (json_path, (json.dumps(card, indent=2, ensure_ascii=False) + "\n").encode()),
                          (md_path, markdown(card).encode())):
        tmp = path.with_name(f".{path.name}.kam-tmp-{os.getpid()}")
        tmp.write_bytes(content)
        os.replace(tmp, path)
    return model, json_path, md_path


def find_model(path: Path) -> Path:
    """The model file meant by PATH: the file itself, NAME without suffix, or its card."""
    if path.name.endswith(".card.json"):
        path = path.with_name(path.name[: -len(".card.json")])
    if path.suffix in FORMATS.values() and path.exists():
        return path
    for suffix in FORMATS.values():
        candidate = path.with_name(path.name + suffix)
        if candidate.exists():
            return candidate
    if path.exists():
        return path
    raise ModelError(f"{path}: no such model file", hint="train one with `kam train ... -o models/NAME`")


def read_card(model: Path) -> dict:
    path = card_path(model)
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{model}: no model card ({path.name}) beside it; kam loads only models with a card, "
                         "whose sha256 is checked before loading", hint="train the model with `kam train`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: not a readable model card: {exc}") from None
    if not isinstance(card, dict) or card.get("kind") != KIND:
        raise ModelError(f"{path}: not a kamcore model card (no \"kind\": \"{KIND}\")")
    for key in ("sha256", "format", "features", "versions"):
        if key not in card:
            raise ModelError(f"{path}: the model card has no {key!r}")
    return card


def check_bytes(model: Path, data: bytes, card: dict) -> None:
    """Refuse the bytes unless they are exactly what the card describes; nothing is unpickled here."""
    expected = card.get("size_bytes")
    if not data:
        raise ModelError(f"{model}: the model file is empty; it was not loaded")
    if isinstance(expected, int) and len(data) < expected:
        raise ModelError(f"{model}: the model file is truncated ({len(data)} of {expected} bytes, by its card) or was "
                         "replaced; it was not loaded")
    digest = hashlib.sha256(data).hexdigest()
    if digest != card["sha256"]:
        raise ModelError(f"{model}: sha256 {digest[:16]}… does not match its card ({str(card['sha256'])[:16]}…): "
                         "the file is not the one that was trained; it was not loaded",
                         hint="retrain it with `kam train`, or restore the file its card describes")
    fmt = card["format"]
    if fmt not in FORMATS:
        raise ModelError(f"{model}: unknown model format {fmt!r} in its card")
    if not data.startswith(MAGIC[fmt]):
        raise ModelError(f"{model}: not a model file (its bytes are not a {fmt} model); it was not loaded")


def check_versions(model: Path, card: dict, allow_mismatch: bool) -> None:
    import sklearn

    trained = card["versions"].get("scikit-learn")
    if trained != sklearn.__version__:
        message = (f"{model} was trained with scikit-learn {trained}, this is {sklearn.__version__}: a model "
                   "may load and predict differently across versions")
        if not allow_mismatch:
            raise ModelError(message + "; it was not loaded",
                             hint="retrain it, install that version, or pass --allow-version-mismatch")
        log.warning("%s (loading anyway: --allow-version-mismatch)", message)


def unpickle(model: Path, data: bytes, fmt: str):
    if fmt == "skops":
        import skops.io as sio

        untrusted = sio.get_untrusted_types(data=data)
        refused = sorted(set(untrusted) - TRUSTED_SKOPS_TYPES)
        if refused:
            raise ModelError(f"{model}: the skops file holds types kam does not trust: {', '.join(refused)}; "
                             "it was not loaded")
        return sio.loads(data, trusted=list(untrusted))
    import joblib

    return joblib.load(io.BytesIO(data))  # reviewed: these bytes matched the card's sha256 in check_bytes()


def load(path: str | os.PathLike, *, allow_version_mismatch: bool = False) -> LoadedModel:
    """Load a model trained by ``kam train``, checking it against its card first (module docstring)."""
    model = find_model(Path(path))
    card = read_card(model)
    try:
        data = model.read_bytes()
    except OSError as exc:
        raise ModelError(f"{model}: cannot read: {exc.strerror or exc}") from None
    check_bytes(model, data, card)
    check_versions(model, card, allow_version_mismatch)
    try:
        pipeline = unpickle(model, data, card["format"])
    except ModelError:
        raise
    except Exception as exc:  # a file that matches its card yet cannot be read back
        raise ModelError(f"{model}: not a model file: {type(exc).__name__}: {exc}") from None
    names = [f["name"] for f in card["features"]]
    classes = [str(c) for c in getattr(pipeline, "classes_", [])]
    if not hasattr(pipeline, "predict_proba") or "won" not in classes:
        raise ModelError(f"{model}: not a kamcore win model (a classifier with a 'won' class)")
    if list(getattr(pipeline, "feature_names_in_", names)) != names:
        raise ModelError(f"{model}: the model's features do not match its card")
    return LoadedModel(pipeline=pipeline, card=card, path=model)
