"""Sample matrices with planted errors, for the demo and the tests.

`write_matrix` returns exactly which problems it planted, so a test can
check that the QC job finds those and nothing else.
"""

from __future__ import annotations

import random
from pathlib import Path

PLANTABLE = ("fields", "numeric", "missing", "duplicates", "decode")


def write_matrix(path: Path, rows: int, samples: int, *, sep: str = "\t",
                 plant: dict[str, list[int]] | None = None, header_dup: bool = False,
                 seed: int = 1) -> list[tuple[str, int, str]]:
    """Write a header + `rows` data lines; `plant` maps a check to 1-based
    file line numbers (>= 2) to damage. Returns (file, line, check) planted."""
    rng = random.Random(seed)
    plant = plant or {}
    at: dict[int, str] = {line: check for check, lines in plant.items() for line in lines}
    expected: list[tuple[str, int, str]] = []
    names = [f"S{i:03d}" for i in range(samples)]
    if header_dup and samples > 1:
        names[-1] = names[0]
        expected.append((path.name, 1, "header"))
    with open(path, "wb") as f:
        f.write((sep.join(["id", *names]) + "\n").encode())
        for line in range(2, rows + 2):
            ident = f"m{line:07d}"
            values = [f"{rng.random() * 10:.3f}" for _ in range(samples)]
            check = at.get(line)
            if check == "fields":
                values = values[:-1]
            elif check == "numeric":
                values[rng.randrange(samples)] = "abc"
            elif check == "missing":
                values = ["NA"] * samples
            elif check == "duplicates":
                ident = "m0000002"
            if check == "decode":
                f.write(ident.encode() + sep.encode() + b"\xff\xfe" + b"\n")
            else:
                f.write((sep.join([ident, *values]) + "\n").encode())
            if check:
                expected.append((path.name, line, check))
    return expected
