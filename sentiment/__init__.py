"""Reproducible IMDB sentiment pipeline: a Keras Bidirectional LSTM orchestrated by DVC."""
