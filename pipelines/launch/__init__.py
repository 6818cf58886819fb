"""Launchers behind one interface (``base.Launcher``): Vertex AI, local (kfp.local), dry run."""
