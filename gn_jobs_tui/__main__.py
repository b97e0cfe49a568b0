"""`python -m gn_jobs_tui` is the same as the `gn-jobs` command."""

from gn_jobs_tui.cli import main

if __name__ == "__main__":
    main()
