"""The repository stands on its own: a fresh clone, with nothing beside it, holds everything `make run`
and `make test` need. Nothing in it may refer to a folder outside it, and the reference data set it
ships is the real file, unchanged."""

import hashlib
import subprocess

import pytest

from ecommerce_platform_tests.conftest import REAL_SHA256, REAL_SOURCE, REPO_ROOT

# Spelled in pieces so that this file does not match itself.
OUTSIDE_REFERENCES = ("..", "/shared")


def tracked_files() -> list:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True)
    return [REPO_ROOT / name for name in out.stdout.decode().split("\0") if name]


def test_no_file_refers_to_a_folder_beside_the_repository():
    needle = "".join(OUTSIDE_REFERENCES).encode()
    also = b"parents[1] / \"shared\""  # the same place spelled as a path expression
    offenders = []
    for path in tracked_files():
        if not path.is_file() or path.suffix in (".parquet", ".png", ".npz"):
            continue
        data = path.read_bytes()
        for n, line in enumerate(data.splitlines(), 1):
            if needle in line or also in line or b"parent / \"shared\"" in line:
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{n}: {line.decode(errors='replace').strip()}")
    assert not offenders, "files that reach outside the repository:\n" + "\n".join(offenders)


def test_the_reference_data_set_is_tracked_and_unchanged():
    tracked = {p.relative_to(REPO_ROOT).as_posix() for p in tracked_files()}
    assert "data/reference/online_retail.parquet" in tracked
    assert "data/reference/README.md" in tracked
    assert hashlib.sha256(REAL_SOURCE.read_bytes()).hexdigest() == REAL_SHA256
    readme = (REPO_ROOT / "data" / "reference" / "README.md").read_text()
    assert REAL_SHA256 in readme and "CC BY 4.0" in readme and "541,909" in readme


@pytest.mark.parametrize("ignored", ["data/lake/x.parquet", "data/warehouse.duckdb", "data/stream/s/x",
                                     "data/generated/synthetic_online_retail.parquet", "data/my_export.csv"])
def test_local_state_and_user_files_stay_out_of_git(ignored):
    res = subprocess.run(["git", "check-ignore", "-q", ignored], cwd=REPO_ROOT)
    assert res.returncode == 0, f"{ignored} is not ignored by git"


def test_the_reference_folder_is_not_ignored():
    res = subprocess.run(["git", "check-ignore", "-q", "data/reference/online_retail.parquet"], cwd=REPO_ROOT)
    assert res.returncode == 1
