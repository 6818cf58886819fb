"""The edge: Cloud Functions entry points, settings, lazy clients and the error policy."""
