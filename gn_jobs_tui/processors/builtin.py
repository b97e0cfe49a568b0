"""Registers the built-in processors (one module per job type)."""

from __future__ import annotations
