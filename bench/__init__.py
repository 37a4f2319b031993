"""InferOps benchmarks: speed is measured here, never asserted in tests.

Run from the repository root: `python -m bench [NAME ...] [--quick] [--out bench/results]`
(`make bench` runs them all). Each benchmark writes `<out>/<name>.json` (the machine, the
parameters, the results) and prints a short table. Everything runs in-process or on
loopback; nothing reaches the network. Results are recorded in docs/benchmarks.md.
"""
