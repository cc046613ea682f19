"""`pip install` from a wheel works: migrations, survey files, templates and static
files travel inside it, and the installed `aftercall` command migrates a database.

The wheel is built from a copy of the source tree (so no build/ or egg-info lands in the
checkout) and installed with `--no-deps` into a fresh venv under the test's tmp folder.
The dependencies already installed for the tests are made visible to that venv through
a .pth file written after the install, so nothing is downloaded but the build backend;
the checkout itself (and any editable install of it) stays off the venv's path.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("aftercall", "core", "ivr", "dialer", "scoring", "sms", "phonesim")


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 120):
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, source / package, ignore=ignore)
    out = tmp_path_factory.mktemp("dist")
    # pip builds in an isolated environment with the backend pyproject.toml names.
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), "."], source)
    (built,) = out.glob("aftercall-*.whl")
    return built


def test_the_wheel_carries_the_files_that_are_not_python(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())

    versions = sorted((ROOT / "core/migrations/versions").glob("*.py"))
    assert versions and {f"core/migrations/versions/{p.name}" for p in versions} <= names
    expected = {
        "core/migrations/env.py",
        "core/migrations/script.py.mako",
        "core/surveys/post-call.toml",
    }
    for folder in ("aftercall/web/dashboard/templates", "aftercall/web/dashboard/static"):
        expected |= {
            path.relative_to(ROOT).as_posix()
            for path in (ROOT / folder).rglob("*")
            if path.is_file()
        }
    assert expected <= names
    assert not [name for name in names if name.startswith(("tests/", "bench/"))]
    entry_points = zipfile.ZipFile(wheel).read(
        next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    )
    assert b"aftercall = aftercall.cli:main" in entry_points


def test_the_installed_command_checks_surveys_and_migrates_a_database(wheel: Path, tmp_path: Path):
    home = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(home)
    bin_dir = home / "bin"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "SURVEYS_DIR", "AFTERCALL_ENV") and not key.startswith("PIP_")
    }
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
        tmp_path,
        env,
    )
    # The tests' own dependencies, seen after the venv's packages (written after the
    # install, so pip never sees the checkout's editable install there).
    site = Path(run([str(bin_dir / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path, env).stdout.strip())  # fmt: skip
    shared = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zz_test_dependencies.pth").write_text("\n".join(sorted(shared)) + "\n")

    where = run(
        [str(bin_dir / "python"), "-c", "import aftercall, scoring; print(aftercall.__file__)"],
        tmp_path,
        env,
    ).stdout
    assert where.startswith(str(site)), where

    assert "doctor" in run([str(bin_dir / "aftercall"), "--help"], tmp_path, env).stdout
    checked = run([str(bin_dir / "aftercall"), "surveys", "check"], tmp_path, env).stdout
    assert checked.startswith("ok  post-call: ")

    database = tmp_path / "installed.db"
    env["DATABASE_URL"] = f"sqlite:///{database}"
    upgraded = run([str(bin_dir / "aftercall"), "db", "upgrade"], tmp_path, env).stdout
    head = sorted((ROOT / "core/migrations/versions").glob("*.py"))[-1].name.split("_")[0]
    # A new database's report rollup is built at once, on SQLite as on PostgreSQL.
    assert upgraded.splitlines() == [
        f"database at revision {head}",
        "report rollup rebuilt in UTC",
    ]
    with sqlite3.connect(database) as connection:
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    assert revision == head

    # The dashboard's templates and static files are found from the installed package.
    served = run(
        [
            str(bin_dir / "python"),
            "-c",
            "from aftercall.web import create_app\n"
            "client = create_app().test_client()\n"
            "print(client.get('/healthz').status_code,"
            " client.get('/dashboard/login').status_code,"
            " client.get('/dashboard/static/dashboard.css').status_code)",
        ],
        tmp_path,
        env,
    ).stdout
    assert served.split() == ["200", "200", "200"]
