"""Scoring the model on the test split, beside the linear baseline, and the report."""
