"""Tuning studies: search params.yaml on DVC's queue, confirm the winner over seeds."""
