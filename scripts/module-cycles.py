#!/usr/bin/env python3
"""Prints the import cycles between the top-level modules of each crate; exits 1 if there is one.

What it checks: for every workspace member (or the crate folders given as arguments), each file
under `src/` belongs to the top-level module named by its first path component (`src/repo.rs` and
`src/repo/codes.rs` are both `repo`). A file of module A that names `crate::B…` (in a `use` tree,
`crate::{B, C::x}` included, or in an expression or type), or that climbs with `super::` up to the
crate root and down into B, makes an edge A -> B. Every strongly connected component of two or
more modules is a cycle; one cycle through it is printed with a `file:line` for each edge, so the
import to remove is easy to find.

Why: two modules that import each other cannot be understood, tested or moved one without the
other, and the tangle only grows; the lint is cheap enough (a lexer, no compiler) to run on
every change.

Limits (it reads text, it does not resolve names):
- Items defined in `lib.rs` / `main.rs` (the crate root) are not a node: every module may use
  them, and a re-export there (`pub use config::Config`) is not followed to the module it names.
- `use` of a name imported into scope by a glob or an alias is not followed; only paths spelled
  from `crate::`, `$crate::` or `super::` count. Macros are read where they are written.
- `#[cfg(test)]` code counts like any other: a cycle that exists only in test builds is still
  reported. `src/bin/*` and `main.rs` are read as part of the same graph as `lib.rs`.
- Comments, strings, raw strings and char literals are skipped by a small lexer; a `crate::` in
  a doc comment is therefore ignored, which is what we want.

Usage: scripts/module-cycles.py [CRATE_DIR ...]   (default: the members of ./Cargo.toml)
"""

import os
import re
import sys

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def tokens(text):
    """Yields (token, line) for identifiers, `::` and the punctuation the walker needs."""
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    line += text[i] == "\n"
                    i += 1
        elif c == '"' or (c in "rb" and re.match(r'(?:b?r#*"|b")', text[i : i + 8])):
            m = re.match(r'b?(r(#*))?"', text[i:])
            raw, hashes = m.group(1) is not None, m.group(2) or ""
            i += m.end()
            while i < n:
                if raw and text.startswith('"' + hashes, i):
                    i += 1 + len(hashes)
                    break
                if not raw and text[i] == "\\":
                    line += text[i + 1 : i + 2] == "\n"
                    i += 2
                    continue
                if not raw and text[i] == '"':
                    i += 1
                    break
                line += text[i] == "\n"
                i += 1
        elif c == "'":
            # A char literal ('x', '\n', '\u{1F600}') or a lifetime ('a, 'static).
            m = re.match(r"'(\\(u\{[0-9a-fA-F]+\}|x[0-9a-fA-F]{2}|.)|[^\\'])'", text[i:])
            i += m.end() if m else 1
        elif text.startswith("::", i):
            yield "::", line
            i += 2
        else:
            m = IDENT.match(text, i)
            if m:
                yield m.group(), line
                i = m.end()
            else:
                yield c, line
                i += 1


def first_segments(toks, k):
    """First segments of each item of the `use` group whose `{` is at toks[k]; and the index past it."""
    out, depth, start = [], 0, True
    while k < len(toks):
        tok, line = toks[k]
        if tok == "{":
            depth += 1
            start = depth == 1
        elif tok == "}":
            depth -= 1
            if depth == 0:
                return out, k + 1
        elif tok == "," and depth == 1:
            start = True
        elif start and depth == 1:
            if IDENT.fullmatch(tok):
                out.append((tok, line))
            start = False
        k += 1
    return out, k


def references(path, file_module):
    """(top-level module, line) of each path into another top-level module from this file.

    `file_module` is the module path of the file below the crate root (`["repo", "codes"]`);
    inline `mod name { … }` blocks deepen it while they are open.
    """
    with open(path, encoding="utf-8") as f:
        toks = list(tokens(f.read()))
    refs, depth, inline = [], 0, []  # inline: brace depth at which each open `mod x {` began
    k = 0
    while k < len(toks):
        tok, line = toks[k]
        if tok == "mod" and k + 2 < len(toks) and toks[k + 2][0] == "{":
            inline.append(depth + 1)
        elif tok == "{":
            depth += 1
        elif tok == "}":
            if inline and inline[-1] == depth:
                inline.pop()
            depth -= 1
        is_path_start = k + 1 < len(toks) and toks[k + 1][0] == "::"
        if tok == "crate" and is_path_start:
            k += 2
            module = []
        elif tok == "super" and is_path_start and (k == 0 or toks[k - 1][0] != "::"):
            module = file_module + ["<inline>"] * len(inline)
            while k + 1 < len(toks) and toks[k][0] == "super" and toks[k + 1][0] == "::":
                module = module[:-1]
                k += 2
            if module:
                continue  # stays inside the file's own top-level module
        else:
            k += 1
            continue
        if k < len(toks) and toks[k][0] == "{":
            found, k = first_segments(toks, k)
            refs.extend(found)
        elif k < len(toks) and IDENT.fullmatch(toks[k][0]):
            refs.append((toks[k][0], toks[k][1]))
            k += 1
    return refs


def crate_graph(src):
    """{module: {target: (file, line)}} over the top-level modules of one `src/` folder."""
    modules = set()
    for name in os.listdir(src):
        full = os.path.join(src, name)
        if name.endswith(".rs") and name not in ("lib.rs", "main.rs"):
            modules.add(name[:-3])
        elif os.path.isdir(full) and name != "bin":
            modules.add(name)
    graph = {m: {} for m in modules}
    for root, _, files in os.walk(src):
        for name in sorted(files):
            if not name.endswith(".rs"):
                continue
            path = os.path.join(root, name)
            parts = os.path.relpath(path, src)[:-3].split(os.sep)
            if parts[-1] == "mod":
                parts.pop()
            if not parts or parts[0] not in modules:
                continue  # the crate root, or a binary of src/bin
            for target, line in references(path, parts):
                if target in modules and target != parts[0]:
                    graph[parts[0]].setdefault(target, (path, line))
    return graph


def cycles(graph):
    """One cycle through each strongly connected component of two or more modules (Tarjan)."""
    index, low, stack, on_stack, comps = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    found = []
    for comp in comps:
        # Shortest way back to the start, by breadth-first search inside the component.
        start = min(comp)
        prev, queue = {start: None}, [start]
        end = None
        while queue and end is None:
            v = queue.pop(0)
            for w in sorted(graph[v]):
                if w == start:
                    end = v
                    break
                if w in comp and w not in prev:
                    prev[w] = v
                    queue.append(w)
        path = [end]
        while prev[path[-1]] is not None:
            path.append(prev[path[-1]])
        path.reverse()
        found.append((path + [start], comp))
    return found


def members(root):
    with open(os.path.join(root, "Cargo.toml"), encoding="utf-8") as f:
        m = re.search(r"members\s*=\s*\[([^\]]*)\]", f.read())
    return re.findall(r'"([^"]+)"', m.group(1)) if m else ["."]


def main(argv):
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    crates = argv or [os.path.join(root, m) for m in members(root)]
    bad = 0
    for crate in crates:
        src = os.path.join(crate, "src")
        if not os.path.isdir(src):
            continue
        graph = crate_graph(src)
        name = os.path.relpath(crate, root) if not argv else crate
        for path, comp in cycles(graph):
            bad += 1
            print(f"{name}: cycle {' -> '.join(path)}"
                  + (f" (component: {', '.join(sorted(comp))})" if len(comp) > len(path) - 1 else ""))
            for a, b in zip(path, path[1:]):
                file, line = graph[a][b]
                print(f"    {a} -> {b}: {os.path.relpath(file)}:{line}")
    if bad:
        print(f"{bad} module cycle(s)", file=sys.stderr)
        return 1
    print(f"no module cycle in {len(crates)} crate(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
