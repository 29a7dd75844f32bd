"""Built-in commands added through the ``register_commands`` hook, as a third-party plugin adds its own."""
