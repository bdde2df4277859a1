"""Looking inside models: LAM attribution, feature norms, benchmarks, comparison figures."""
