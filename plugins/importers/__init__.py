"""Built-in importers (registered through the ``kamcore`` entry-point group like any plugin)."""
