"""KFP v2 pipelines, their catalog, the compiler entry point and the launchers."""
