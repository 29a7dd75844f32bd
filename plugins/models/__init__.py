"""The built-in win model: ``kam train``, ``kam evaluate`` and ``kam score --model`` (docs/win_model.md)."""
