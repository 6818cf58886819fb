"""The ``mlops-events`` command line."""
