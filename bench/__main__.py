"""`python -m bench [--quick]`: run every benchmark (bench/run_all.py)."""
from bench.run_all import main

main()
