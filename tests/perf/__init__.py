"""Performance: the benchmarks' smoke run (the benchmarks themselves are in tests/bench/)."""
