"""Benchmarks of the performance targets (docs/design.md, Performance): every figure is a
ratio to a baseline measured in the same run,
on the same disk. Run ``python bench/run.py --help``."""
