"""`make dist`: a release archive a server installs without node or any build tool.

It holds the code git tracks (not the tests, benchmarks or CI), htmx in static/vendor/,
and build/static/: every static file under its content-hashed name with its Brotli and
gzip copies. On the server: unpack, `pip install -r requirements.txt`, copy build/static/
into the folder nginx serves, `flask db-upgrade`, reload (docs/deploy.md).

    python deploy/release.py [--out dist]     # prints the archive's path
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LEFT_OUT = ("tests/", "bench/", ".ci/", "package.json", "package-lock.json")
NEEDED = ("static/vendor/htmx.min.js", "build/static")


def _tracked() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout
    return [
        name
        for name in listed.decode().split("\0")
        if name and not name.startswith(LEFT_OUT) and (ROOT / name).is_file()
    ]


def _built() -> list[str]:
    for needed in NEEDED:
        if not (ROOT / needed).exists():
            raise SystemExit(f"{needed} is missing: run `make setup` first")
    built = sorted(
        path.relative_to(ROOT).as_posix() for path in (ROOT / "build" / "static").rglob("*") if path.is_file()
    )
    return ["static/vendor/htmx.min.js", *built]


def version() -> str:
    described = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True)
    return described.stdout.strip() or "unknown"


def build(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    name = f"portal-{version()}"
    archive = out / f"{name}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for relative in sorted(set(_tracked()) | set(_built())):
            info = tar.gettarinfo(str(ROOT / relative), arcname=f"{name}/{relative}")
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(ROOT / relative, "rb") as file:
                tar.addfile(info, file)
        stamp = f"{version()}\n".encode()
        info = tarfile.TarInfo(f"{name}/RELEASE")
        info.size = len(stamp)
        tar.addfile(info, io.BytesIO(stamp))
    return archive


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "dist"))
    print(build(Path(parser.parse_args(sys.argv[1:]).out)))
