#!/usr/bin/env python3
"""Run the `csgi-serve ... --check` commands a page shows and compare their
output with the page's.

    docs_transcripts.py PAGE CSGI_SERVE [FROM=TO]...

In the page's plain code blocks, each line "$ csgi-serve ARGS --check" is
run (from the project's root) with CSGI_SERVE, after each FROM=TO
replacement on ARGS (the page writes "--module-path ." where the test has
another directory); its standard output must be the lines that follow, up
to the next "$ " line or the end of the block. docs/middleware.md's
transcripts load tests/docs/greet.c built as greet.so and the talk's module.
"""
import pathlib
import re
import shlex
import subprocess
import sys

root = pathlib.Path(__file__).resolve().parent.parent
page_name, serve, *replacements = sys.argv[1:]
pairs = [item.split("=", 1) for item in replacements]

failed = False
count = 0


def plain_blocks(page):
    """The text of each code block without a language."""
    lines = page.split("\n")
    i = 0
    while i < len(lines):
        fence = re.fullmatch(r"```(\w*)", lines[i])
        i += 1
        if not fence:
            continue
        start = i
        while i < len(lines) and lines[i] != "```":
            i += 1
        if not fence.group(1):
            yield "\n".join(lines[start:i])
        i += 1


page = (root / page_name).read_text()
for block in plain_blocks(page):
    commands = re.split(r"^\$ ", block, flags=re.M)
    for text in commands[1:]:
        command, _, expected = text.partition("\n")
        expected = expected.rstrip("\n")
        words = shlex.split(command)
        if words[0] != "csgi-serve" or "--check" not in words:
            continue
        args = " ".join(words[1:])
        for old, new in pairs:
            args = args.replace(old, new)
        result = subprocess.run(
            [serve, *shlex.split(args)], cwd=root, capture_output=True, text=True
        )
        got = result.stdout
        if result.returncode != 0 or got != expected + "\n":
            print(f"{page_name}: $ {command}\n  ran: {serve} {args}", file=sys.stderr)
            print(f"  exit {result.returncode}; output:\n{got}{result.stderr}", file=sys.stderr)
            print(f"  the page shows:\n{expected}", file=sys.stderr)
            failed = True
        count += 1
if count == 0:
    print(f"{page_name}: no csgi-serve --check transcript", file=sys.stderr)
    failed = True
print(f"{page_name}: {count} csgi-serve --check transcripts checked")
sys.exit(1 if failed else 0)
