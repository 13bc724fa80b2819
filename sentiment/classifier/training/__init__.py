"""Fitting the model: seeded and deterministic, adversarial terms, devices, word vectors."""
