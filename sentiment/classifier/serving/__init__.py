"""The served model (raw text in, probability out) and the predict command."""
