"""`python -m local.vendor [--check]`: copy the pages' third-party files from node_modules into web/vendor/.

The dashboard's charting library (Chart.js) is an npm devDependency pinned in package.json, and
web/ is what the function app serves and deploys (node_modules is not deployed), so the file the
browser loads is a committed copy. After changing the version in package.json: `npm install`, then
`npm run vendor` (this script). `--check` only reports copies that differ (exit code 1).
Standard library only: it runs before the venv exists.
"""
from __future__ import annotations

import filecmp
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# destination under web/vendor -> source under node_modules; the bundle carries @kurkle/color, hence its licence
FILES = {
    "chart.js/chart.umd.min.js": "chart.js/dist/chart.umd.min.js",
    "chart.js/LICENSE.md": "chart.js/LICENSE.md",
    "chart.js/LICENSE-kurkle-color.md": "@kurkle/color/LICENSE.md",
}


def pairs(root: Path = ROOT) -> list[tuple[Path, Path]]:
    """(source in node_modules, copy in web/vendor) for every vendored file."""
    return [(root / "node_modules" / source, root / "web" / "vendor" / target) for target, source in FILES.items()]


def stale(root: Path = ROOT) -> list[Path]:
    """The copies that are missing or differ from their source."""
    return [target for source, target in pairs(root)
            if not target.exists() or not filecmp.cmp(source, target, shallow=False)]


def copy(root: Path = ROOT) -> list[Path]:
    """Copy every vendored file; returns the copies written."""
    written = []
    for source, target in pairs(root):
        if not source.exists():
            raise SystemExit(f"{source.relative_to(root)} is missing: run `npm install` first")
        if not target.exists() or not filecmp.cmp(source, target, shallow=False):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            written.append(target)
    return written


def main(argv: list[str]) -> int:
    if "--check" in argv:
        outdated = stale()
        for path in outdated:
            print(f"out of date: {path.relative_to(ROOT)} (run `npm run vendor`)")
        return 1 if outdated else 0
    written = copy()
    for path in written:
        print(f"copied {path.relative_to(ROOT)}")
    if not written:
        print("web/vendor is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
