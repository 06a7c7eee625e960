"""Reproducible performance measurements, each printing govex's figure beside a baseline
measured in the same run: `govex bench NAME [ARGS…]` runs `python -m benchmarks.bench_NAME`.

They ship in the wheel (like the rest of the program, they read nothing from the repository),
so an installed govex measures itself where it runs.
"""
