"""A reproducible DVC pipeline that trains a Keras Bidirectional LSTM text classifier.

The tree is the architecture, lowest first; a module imports only its own room and rooms below it
(tests/test_architecture.py holds the rule):

- the shared bottom, beside this file: `errors`, `params` (the one checked schema), `console`
  (one-line errors, progress notes), `files` (all-or-nothing outputs), `tools` (git, dvc and gh
  as subprocesses), `tensorflow_start` (TensorFlow started quietly, one thread per op);
- `classifier/`, the product, what trains, scores and serves the model: `data` (sources, text,
  splits, batches) below `model` (the network, its layers, its files), below `training`,
  `evaluation` and `serving`, which never import each other;
- `proof/`, what proves a result: the platform record, seed noise, the reproduction check, the
  comparison of a change with the noise, the pull-request comment, figures and plots pages;
- `measurement/`, what measures the product: benchmarks and FLOP accounting;
- `cli`, the `sentiment` command, on top.

The product never imports `proof` or `measurement`.
"""
