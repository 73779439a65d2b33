#!/usr/bin/env python3
"""Check that the code the docs show is the code CTest compiles and runs.

Whole files: docs/testing.md shows tests/check_example.c and docs/router.md
shows tests/check_router_example.c, each as the code block after a marker
line "<!-- tests/FILE -->".

Blocks: on the pages of BLOCKS, every ```c block must appear verbatim (its
text without the last newline) in one of the page's test files, unless the
line just before it is "<!-- not compiled -->" (a signature, a shell line).
Every ```ini block must be preceded by "<!-- tests/FILE -->" and be that
file, which a test loads. A file of MADE_OF_BLOCKS must be exactly the
page's blocks it holds, in order, one blank line apart: the page shows the
whole file.
"""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
PAIRS = [
    ("docs/testing.md", "tests/check_example.c"),
    ("docs/router.md", "tests/check_router_example.c"),
]
BLOCKS = {
    "docs/request-response.md": ["tests/check_docs_request.c"],
    "docs/middleware.md": [
        "tests/check_docs_middleware.c",
        "tests/docs/greet.h",
        "tests/docs/greet.c",
        "tests/docs/host.c",
    ],
}
MADE_OF_BLOCKS = ["tests/docs/greet.h", "tests/docs/greet.c", "tests/docs/host.c"]
SKIP = "<!-- not compiled -->"
MARKER = re.compile(r"<!-- (tests/\S+) -->")

failed = False


def fail(message):
    global failed
    print(message, file=sys.stderr)
    failed = True


for page_name, code_name in PAIRS:
    page = (root / page_name).read_text()
    code = (root / code_name).read_text()
    marker = "<!-- " + code_name + " -->\n```c\n"
    start = page.find(marker)
    if start < 0:
        fail(f"{page_name}: no {code_name} block")
        continue
    start += len(marker)
    end = page.find("```\n", start)
    if page[start:end] != code:
        fail(f"{page_name}: the example differs from {code_name}; copy it again")
        continue
    print(f"{page_name} shows {code_name}")


def fenced_blocks(page):
    """(language, text, line number, the line before the fence) of each block."""
    lines = page.split("\n")
    i = 0
    while i < len(lines):
        match = re.fullmatch(r"```(\w*)", lines[i])
        if not match:
            i += 1
            continue
        start = i
        i += 1
        while i < len(lines) and lines[i] != "```":
            i += 1
        before = lines[start - 1] if start > 0 else ""
        yield match.group(1), "\n".join(lines[start + 1 : i]), start + 1, before
        i += 1


for page_name, code_names in BLOCKS.items():
    page = (root / page_name).read_text()
    codes = {name: (root / name).read_text() for name in code_names}
    held = {name: [] for name in code_names}  # the blocks each file holds, in page order
    checked = skipped = inis = 0
    for language, text, line, before in fenced_blocks(page):
        if language == "ini":
            marker = MARKER.fullmatch(before)
            if not marker:
                fail(f"{page_name}:{line}: an ini block without a <!-- tests/FILE --> line")
            elif (root / marker.group(1)).read_text() != text + "\n":
                fail(f"{page_name}:{line}: the ini block differs from {marker.group(1)}")
            else:
                inis += 1
            continue
        if language != "c":
            continue
        if before == SKIP:
            skipped += 1
            continue
        homes = [name for name, code in codes.items() if text in code]
        if not homes:
            fail(f"{page_name}:{line}: this block is in none of {', '.join(code_names)}")
            continue
        checked += 1
        for name in homes:
            held[name].append(text)
    for name, blocks in held.items():
        if not blocks:
            fail(f"{page_name}: no block is from {name}")
        elif name in MADE_OF_BLOCKS and "\n\n".join(blocks) + "\n" != codes[name]:
            fail(f"{page_name}: {name} is not exactly the page's blocks it holds")
    print(
        f"{page_name}: {checked} C blocks found in {', '.join(code_names)}"
        f" ({skipped} marked not compiled), {inis} INI blocks equal to their files"
    )

sys.exit(1 if failed else 0)
