"""Benchmarks of casebridge. Each ``bench_*.py`` module exposes ``run(quick: bool) -> list[Row]``.

Every row reports a measurement together with a baseline measured in the same run, so the ratio
is comparable across machines; absolute times are printed for context only.
"""
