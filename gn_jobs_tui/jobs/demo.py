"""`gn-jobs demo`: sample files with planted errors, and real jobs to watch."""

from __future__ import annotations

from pathlib import Path

from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.launcher import launch
from gn_jobs_tui.core.server import state_dir
from gn_jobs_tui.core.store import Store
from gn_jobs_tui.jobs.samples import write_matrix


def write_demo_files(directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "geno_a": directory / "genotypes_chr1.tsv",
        "geno_b": directory / "genotypes_chr2.tsv",
        "pheno": directory / "phenotypes.csv",
        "clean": directory / "clean_matrix.tsv",
        "bulk": directory / "bulk_rows.tsv",
        "bad": directory / "rows_with_bad_line.tsv",
    }
    write_matrix(files["geno_a"], 60_000, 40, plant={"fields": [120, 5000], "numeric": [300],
                                                     "duplicates": [9000]})
    write_matrix(files["geno_b"], 60_000, 40, plant={"missing": [42, 43], "decode": [777]},
                 header_dup=True, seed=2)
    write_matrix(files["pheno"], 5_000, 12, sep=",", plant={"numeric": [10, 11, 12]}, seed=3)
    write_matrix(files["clean"], 20_000, 20, seed=4)
    write_matrix(files["bulk"], 120_000, 6, seed=5)
    write_matrix(files["bad"], 3_000, 6, plant={"numeric": [2500]}, seed=6)
    return files


def run_demo(store: Store, config: Config) -> list[str]:
    files = write_demo_files(state_dir() / "demo")
    db = str(state_dir() / "demo" / "demo.sqlite")
    f = {k: str(v) for k, v in files.items()}
    plan = [
        ("alice", "qc-files", {"files": f"{f['geno_a']},{f['geno_b']},{f['pheno']}", "workers": "3"}),
        ("bob", "qc-files", {"files": f["clean"], "workers": "1"}),
        ("carol", "insert-rows", {"file": f["bulk"], "database": db, "table": "bulk_rows",
                                  "batch_size": "500", "max_rate": "2000"}),
        ("alice", "insert-rows", {"file": f["bad"], "database": db, "table": "bad_rows",
                                  "batch_size": "200"}),
        ("dave", "sleep", {"seconds": "90"}),
        ("bob", "sleep", {"seconds": "4", "exit_code": "2"}),
        ("erin", "sleep", {"seconds": "30"}),
    ]
    return [launch(store, config, jt, params, user) for user, jt, params in plan]
