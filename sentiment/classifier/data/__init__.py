"""Reviews in, padded splits out: sources, the canonical record, text, splits and batches."""
