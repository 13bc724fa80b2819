"""What measures the product: the pipeline and predict benchmarks, FLOP accounting."""
