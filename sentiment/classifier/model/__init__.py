"""The models: the network (its builder, its layers and their fast twins, its files and its
inference), and the baseline's n-gram model as it ships."""
