"""The pipeline's stages: one thin script each, run by `dvc repro` as dvc.yaml declares."""
