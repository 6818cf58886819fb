"""Serving: the serving container (``contract``, ``predictor``, ``container``, ``records``: what
``mlops-events serve`` runs, docs/serving.md) and the Vertex AI Endpoint adapter (``vertex``).

A model artifact is a folder (local path) or prefix (``gs://...``) holding ``model.joblib`` (the
fitted scikit-learn estimator, ``joblib.dump``) and ``metadata.json`` (``feature_names``, ``task``,
``label_column``, ...): ``pipelines.components.training.save_model`` writes it, the serving
container loads it and predicts on a DataFrame of exactly ``feature_names``.
"""
