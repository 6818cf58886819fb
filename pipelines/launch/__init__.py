"""Launchers behind one interface (``base.Launcher``): Vertex AI (the emulator locally), dry run."""
