"""The network: its builder, its layers (and their fast twins), its files and its inference."""
