"""Screenshots of `archsearch report` pages, as the README and docs/ show them.

    python benchmarks/report_screenshots.py runs/digits.db:digits bench/nb201:bench \
        runs/digits-pareto.db:pareto@sec-cost-scatter --out docs

Each argument is ``SOURCE:NAME`` (a study database or an ``archsearch bench`` folder, and the
name of its picture), optionally ``@ELEMENT``, the id of the section to scroll to: the report
is written to a temporary file, opened in headless Chromium (tests/browser.py: fails on a
console error), and the window's view is saved as ``OUT/report-NAME.png`` in 256 colours,
so the pictures stay small in git.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PIL import Image

from archsearch.report import write_report

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))  # the tests' browser harness
from browser import chromium, console_errors, open_page  # noqa: E402


def shoot(source: Path, png: Path, width: int, height: int, element: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "report.html"
        write_report(source, page)
        with chromium(width, height) as driver:
            open_page(driver, page)
            if element:
                driver.execute_script("document.getElementById(arguments[0]).scrollIntoView()",
                                      element)
            errors = console_errors(driver)
            if errors:
                raise SystemExit(f"{source}: console errors {errors}")
            driver.save_screenshot(str(png))
    image = Image.open(png).convert("RGB")
    image.quantize(256, method=Image.Quantize.MEDIANCUT).save(png, optimize=True)
    print(f"{png}: {png.stat().st_size:,} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", help="SOURCE:NAME")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=1500)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for spec in args.sources:
        source, _, name = spec.rpartition(":")
        name, _, element = name.partition("@")
        shoot(Path(source), args.out / f"report-{name}.png", args.width, args.height, element)


if __name__ == "__main__":
    main()
