#!/usr/bin/env python3
"""Check that docs/testing.md shows tests/check_example.c exactly (the code
block after its marker), so the example on the page is the one CTest runs."""
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parent.parent
page = (root / "docs" / "testing.md").read_text()
code = (root / "tests" / "check_example.c").read_text()
marker = "<!-- tests/check_example.c -->\n```c\n"
start = page.find(marker)
if start < 0:
    sys.exit("docs/testing.md: no tests/check_example.c block")
start += len(marker)
end = page.find("```\n", start)
if page[start:end] != code:
    sys.exit("docs/testing.md: the example differs from tests/check_example.c; copy it again")
print("docs/testing.md shows tests/check_example.c")
