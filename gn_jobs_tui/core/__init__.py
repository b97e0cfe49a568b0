"""The non-UI core: the Redis contract, store, supervision and job types.

Nothing in this package imports Textual (checked by import-linter in CI).
"""
