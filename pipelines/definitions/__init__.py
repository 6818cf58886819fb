"""The built-in pipelines, one per module: ``pipelines/definitions/<name>.py`` defining one
``@dsl.pipeline`` is pipeline ``<name>`` (``pipelines.discovery`` finds it; compile builds it)."""
