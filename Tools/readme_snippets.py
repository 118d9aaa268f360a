#!/usr/bin/env python3
"""Turns the ```swift blocks of README.md into Swift the test suite compiles and runs.

    python3 Tools/readme_snippets.py            # rewrites Tests/LarderAdminTests/ReadmeSnippets.swift
    python3 Tools/readme_snippets.py --stdout   # prints it instead (the README test compares the two)

Run it after changing a ```swift block of README.md and commit both files: ReadmeSnippetTests
fails while the committed file differs from what this script makes, so the README and the code
the tests compile cannot drift apart.

What "compiles" means here. The blocks are pasted, in README order, into the body of one async
function, as a newcomer would paste them one after another into an app's main.swift: a later
block sees the names of the earlier ones, a name declared twice does not compile, and a write
called without `await` fails as it would in async top-level code. `import` lines are gathered at
the top of the file. Two rewrites, and only these, make the result runnable in a test:

- a string literal naming a path under /var/lib/kitchen/ becomes the same path under the
  function's `readmeDirectory` (a temporary directory);
- a block marked compile-only is compiled but not run (`guard runCompileOnlyBlocks`), so every
  compile-only block must come after every block that runs.

A block is marked by an HTML comment on the line right above its fence, with a reason:

    <!-- readme-snippets: compile-only, serves until SIGINT or SIGTERM -->
    <!-- readme-snippets: skip, a Package.swift manifest, not app code -->

Only the Python standard library is used.
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
OUTPUT = ROOT / "Tests" / "LarderAdminTests" / "ReadmeSnippets.swift"

DIRECTIVE = re.compile(r"^<!--\s*readme-snippets:\s*(skip|compile-only)\s*,\s*(\S.*?)\s*-->$")
IMPORT = re.compile(r"^import\s+[A-Za-z_][A-Za-z0-9_]*\s*$")
KITCHEN_PATH = re.compile(r'"/var/lib/kitchen/([^"\\]*)"')


class SnippetError(Exception):
    pass


def blocks(text):
    """Yields (line number of the fence, section heading, mode, reason, code lines)."""
    lines = text.split("\n")
    heading = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        fence = re.match(r"^(```+|~~~+)(.*)$", line)
        if not fence:
            index += 1
            continue
        marker, info = fence.group(1), fence.group(2).strip()
        start = index
        index += 1
        body = []
        while index < len(lines) and not lines[index].startswith(marker):
            body.append(lines[index])
            index += 1
        if index == len(lines):
            raise SnippetError("README.md line %d: the code block never closes" % (start + 1))
        index += 1
        previous = lines[start - 1] if start > 0 else ""
        directive = DIRECTIVE.match(previous.strip())
        if info.split(" ")[0] != "swift":
            if directive:
                raise SnippetError("README.md line %d: a readme-snippets marker above a block that is not ```swift"
                                   % start)
            continue
        if previous.strip().startswith("<!--") and "readme-snippets" in previous and not directive:
            raise SnippetError("README.md line %d: malformed marker %r (expected '<!-- readme-snippets: "
                               "skip|compile-only, <reason> -->')" % (start, previous.strip()))
        mode, reason = (directive.group(1), directive.group(2)) if directive else ("run", None)
        yield start + 1, heading, mode, reason, body


def generate(text):
    imports = []
    chunks = []
    compile_only_seen = False
    count = 0
    for line_number, heading, mode, reason, body in blocks(text):
        if mode == "skip":
            continue
        if mode == "run" and compile_only_seen:
            raise SnippetError("README.md line %d: this block runs, but a compile-only block comes before it; "
                               "compile-only blocks must come last" % line_number)
        count += 1
        chunk = []
        if mode == "compile-only" and not compile_only_seen:
            chunk.append("    // Compiled, not run, from here on.")
            chunk.append("    guard runCompileOnlyBlocks else { return }")
            chunk.append("")
            compile_only_seen = True
        title = ", compile-only: %s" % reason if mode == "compile-only" else ""
        # Named by section and number, not by line: editing prose must not change this file.
        chunk.append('    // README.md block %d, "%s"%s' % (count, heading, title))
        for line in body:
            if IMPORT.match(line):
                name = line.split()[1]
                if name not in imports:
                    imports.append(name)
                continue
            if not line.strip() and chunk[-1].startswith("    // README.md block"):
                continue   # the blank line after a hoisted import
            line = KITCHEN_PATH.sub(lambda m: '(readmeDirectory + "/%s")' % m.group(1), line)
            chunk.append(("    " + line) if line.strip() else "")
        while chunk and chunk[-1] == "":
            chunk.pop()
        chunks.append("\n".join(chunk))
    if count == 0:
        raise SnippetError("README.md has no ```swift block to compile")
    header = [
        "// Generated by Tools/readme_snippets.py from README.md. Do not edit: change the README and run",
        "// `python3 Tools/readme_snippets.py`. ReadmeSnippetTests fails while this file differs from",
        "// what the script makes.",
        "//",
        "// Every ```swift block of README.md, in order, in one function body, as they would be pasted",
        "// one after another into an app's main.swift; the script's documentation says what it rewrites.",
        "",
    ]
    header += ["import %s" % name for name in imports]
    header += [
        "",
        "/// The README's Swift blocks. `readmeDirectory` stands for /var/lib/kitchen; the blocks marked",
        "/// compile-only run only when `runCompileOnlyBlocks` is true.",
        "func readmeSnippets(readmeDirectory: String, runCompileOnlyBlocks: Bool) async throws {",
    ]
    return "\n".join(header) + "\n" + "\n\n".join(chunks) + "\n}\n"


def main(arguments):
    if arguments not in ([], ["--stdout"]):
        sys.stderr.write("usage: readme_snippets.py [--stdout]\n")
        return 64
    try:
        swift = generate(README.read_text(encoding="utf-8"))
    except SnippetError as error:
        sys.stderr.write("readme_snippets: %s\n" % error)
        return 1
    if arguments == ["--stdout"]:
        sys.stdout.buffer.write(swift.encode("utf-8"))
    else:
        OUTPUT.write_text(swift, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
