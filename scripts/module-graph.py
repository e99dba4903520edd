#!/usr/bin/env python3
"""Prints which top-level modules of src/ each one uses, and fails when two of them use each
other, directly or around a longer cycle: a module must never import its importer.

A module's uses are the `crate::NAME` paths in its files, including those inside
`use crate::{…}` groups; `main.rs` is the binary, outside the library's graph."""
import re
import sys
from pathlib import Path

src = Path(sys.argv[1] if len(sys.argv) > 1 else "src")
modules = sorted(
    p.stem if p.is_file() else p.name
    for p in src.iterdir()
    if (p.suffix == ".rs" and p.stem not in ("lib", "main")) or (p.is_dir() and (p / "mod.rs").exists())
)


def files_of(module):
    single = src / f"{module}.rs"
    return [single] if single.exists() else sorted((src / module).rglob("*.rs"))


def group_heads(text):
    """The first segment of each path directly inside a `crate::{…}` group."""
    heads = []
    for start in (m.end() for m in re.finditer(r"crate::\{", text)):
        depth, item = 1, ""
        for ch in text[start:]:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    heads.append(item)
                    break
            if depth == 1 and ch == ",":
                heads.append(item)
                item = ""
            elif depth == 1 and ch != "}":
                item += ch
    return [h.strip().split("::")[0].strip() for h in heads if h.strip()]


def strip_comments(text):
    return re.sub(r"//[^\n]*", "", text)


uses = {}
for module in modules:
    found = set()
    for path in files_of(module):
        text = strip_comments(path.read_text())
        found.update(re.findall(r"crate::([a-z_][a-z0-9_]*)", text))
        found.update(group_heads(text))
    uses[module] = sorted(m for m in found if m in modules and m != module)

for module in modules:
    print(f"{module} -> {', '.join(uses[module]) or '(nothing)'}")

# Any cycle, found by depth-first search.
state, stack, cycles = {}, [], []


def visit(module):
    state[module] = "open"
    stack.append(module)
    for used in uses[module]:
        if state.get(used) == "open":
            cycles.append(stack[stack.index(used):] + [used])
        elif used not in state:
            visit(used)
    stack.pop()
    state[module] = "done"


for module in modules:
    if module not in state:
        visit(module)
if cycles:
    for cycle in cycles:
        print("module cycle: " + " -> ".join(cycle), file=sys.stderr)
    sys.exit(1)
