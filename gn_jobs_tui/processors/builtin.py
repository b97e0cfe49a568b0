"""Registers the built-in processors (one module per job type)."""

from __future__ import annotations

from gn_jobs_tui.processors import register
from gn_jobs_tui.processors.insert import InsertProcessor
from gn_jobs_tui.processors.qc import QCProcessor

register("qc-files", QCProcessor())
register("insert-rows", InsertProcessor())
