"""Benchmarks: Market Spine measured against raw-PostgreSQL baselines in the same run.

`python -m bench` (or `make bench`) runs every scenario; `--quick` is a smoke
run with small sizes, `--only NAME` runs one scenario, `--repeat N` sets the
measured repetitions after the warm-up. Each scenario works in a scratch
database of its own, cloned from a template migrated for the run and dropped
at the end, so the bench never touches dev data. See docs/benchmarks.md.

Absolute figures on a shared machine are noisy; the ratios between the product
and its baseline, measured interleaved in one run, are what the targets judge.
"""
