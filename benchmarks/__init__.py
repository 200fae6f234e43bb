"""The benchmark suite (`make bench`, benchmarks/run.py); results in docs/."""
