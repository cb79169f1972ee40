"""On-demand benchmarks (not part of pytest). See bench/README.md; `python -m bench --quick`."""
