"""Helpers of the benchmark scripts in ``bench/`` (kept in a package so ``bench/*.py`` are
only the benchmarks themselves: ``make bench`` runs every one of them)."""
