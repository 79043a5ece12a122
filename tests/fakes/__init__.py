"""Local fake servers that speak real provider wire formats, for tests and benchmarks."""
