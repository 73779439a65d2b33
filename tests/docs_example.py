#!/usr/bin/env python3
"""Check that each page that shows a test file shows it exactly (the code
block after its marker), so the example on the page is the one CTest runs:
docs/testing.md shows tests/check_example.c, docs/router.md shows
tests/check_router_example.c."""
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parent.parent
PAIRS = [
    ("docs/testing.md", "tests/check_example.c"),
    ("docs/router.md", "tests/check_router_example.c"),
]

failed = False
for page_name, code_name in PAIRS:
    page = (root / page_name).read_text()
    code = (root / code_name).read_text()
    marker = "<!-- " + code_name + " -->\n```c\n"
    start = page.find(marker)
    if start < 0:
        print(f"{page_name}: no {code_name} block", file=sys.stderr)
        failed = True
        continue
    start += len(marker)
    end = page.find("```\n", start)
    if page[start:end] != code:
        print(f"{page_name}: the example differs from {code_name}; copy it again", file=sys.stderr)
        failed = True
        continue
    print(f"{page_name} shows {code_name}")
sys.exit(1 if failed else 0)
