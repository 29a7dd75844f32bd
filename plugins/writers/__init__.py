"""Built-in output writers (registered through the ``kamcore`` entry-point group like any plugin)."""
