"""Benchmarks: figures measured side by side with a baseline in the same run.

`python -m benchmarks` runs them all (each starts its own server and makes its
own data). Nothing here is a test: the test suite times nothing.
"""
