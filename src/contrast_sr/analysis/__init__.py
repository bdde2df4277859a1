"""Analysis tools: benchmarks, feature maps, attribution."""
