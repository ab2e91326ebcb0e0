#!/usr/bin/python3
"""The include graph of the processor's modules, and its rules (make lint).

    include_graph.py [ROOT]        ROOT defaults to processor/

A module is the first folder under ROOT (processor/store/commit.c is module
`store`); a file directly under ROOT is the module of its name
(processor/main.c is `main`); processor/tools/*.c is `tools`. Every
`#include` line of every .c and .h under ROOT is read (comments skipped; no
preprocessing, so an include under #if counts too). A quoted include is
found as the compiler finds it with -Iprocessor: next to the including file
first, then under ROOT.

Prints the module graph (module -> modules it includes, with the number of
include lines) and the libraries each module includes, then fails (exit 1)
when:

  - the modules include each other in a cycle (the cycle is named, with the
    files and lines that make each edge);
  - a module includes a library's header that LIBRARIES does not give it;
  - a stage (STAGES) includes a module in STAGE_FORBIDDEN (the driver, ops
    or main), unless the include is in ALLOWED_FOR_NOW;
  - a quoted include names a file that is not there.

Standard Python 3 only.
"""

import os
import re
import sys

# The stages, in the order of the data flow (README.md, "Layout").
STAGES = ("in_kafka", "decode", "score", "rules", "store", "out_kafka")

# What a stage must not include: the driver (pipeline), ops/ (config, http,
# metrics, state_json: a stage gets what it needs from its caller) and main.
STAGE_FORBIDDEN = ("pipeline", "ops", "main")

# Library -> (its headers, the modules that may include them). A header is
# matched exactly ("avro.h") or, when it ends with "/", as a prefix
# ("avro/" matches <avro/io.h>). Only <...> includes are matched.
LIBRARIES = {
    # Kafka is read by in_kafka and written by out_kafka; the tools talk to
    # the broker themselves.
    "librdkafka": (("librdkafka/",), {"in_kafka", "out_kafka", "tools"}),
    # Avro decoding is the decode stage's; ews-gen encodes its events.
    "avro": (("avro.h", "avro/"), {"decode", "tools"}),
    # Redis is the store's alone; ews-inspect and the tests reach it
    # through store/.
    "hiredis": (("hiredis/",), {"store", "tools"}),
    # The configuration file (ops/config.c).
    "yaml": (("yaml.h",), {"ops"}),
    # The HTTP endpoints (ops/http.c).
    "microhttpd": (("microhttpd.h",), {"ops"}),
    # The schema registry client (decode/registry.c); ews-alertmanager
    # posts to Alertmanager.
    "curl": (("curl/",), {"decode", "tools"}),
    # JSON, where it is used today: decode (JSON input, registry answers),
    # in_kafka (librdkafka's statistics), ops (state_json) and
    # ews-alertmanager (Alertmanager's alerts).
    "jansson": (("jansson.h",), {"decode", "in_kafka", "ops", "tools"}),
    # Logistic regression (liblinear): ews-calibrate fits its models.
    "liblinear": (("linear.h",), {"tools"}),
    # The unit test framework: tests/ only, never under processor/.
    "cmocka": (("cmocka.h",), set()),
}

# Stage includes of STAGE_FORBIDDEN modules that are known and tolerated
# until they are removed: (including file relative to ROOT, included
# header). Each is reported on every run; remove an entry once its include
# is gone. None today.
ALLOWED_FOR_NOW = set()

# Headers the build makes (under build/gen/, named as included): the
# store's Lua scripts as C strings (the Makefile, STORE_LUA_GEN).
GENERATED = {"store/scripts_lua.h"}

# The order modules are reported in; others follow sorted by name.
ORDER = STAGES + ("pipeline", "ops", "util", "main", "tools")

INCLUDE_RE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"]+)[>"]',
                        re.M)


def strip_comments(text):
    """The text with its comments blanked out, line numbers kept; string
    and character literals are kept as they are."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append("\n" * text.count("\n", i, end))
            i = end
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def module_of(rel):
    """The module of a path relative to ROOT."""
    parts = rel.split("/")
    if len(parts) == 1:
        return os.path.splitext(parts[0])[0]
    return parts[0]


def sources(root):
    """The .c and .h files under root, as paths relative to it, sorted."""
    found = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in files:
            if f.endswith((".c", ".h")):
                found.append(os.path.relpath(os.path.join(d, f), root)
                             .replace(os.sep, "/"))
    return sorted(found)


def library_of(header):
    for lib, (headers, _) in LIBRARIES.items():
        for h in headers:
            if header == h or (h.endswith("/") and header.startswith(h)):
                return lib
    return None


def find_cycle(graph, scc):
    """A cycle through the modules of one strongly connected component, as
    a list of modules whose last one includes the first."""
    start = min(scc, key=lambda m: order_key(m))
    path, seen = [start], {start}

    def walk(m):
        for nxt in sorted(graph.get(m, ()), key=order_key):
            if nxt not in scc:
                continue
            if nxt == start:
                return True
            if nxt not in seen:
                seen.add(nxt)
                path.append(nxt)
                if walk(nxt):
                    return True
                path.pop()
        return False

    walk(start)
    return path


def sccs(graph):
    """Tarjan's strongly connected components of graph, those of two or
    more modules."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in sorted(graph, key=order_key):
        if v not in index:
            visit(v)
    return out


def order_key(m):
    return (ORDER.index(m), "") if m in ORDER else (len(ORDER), m)


def lint(root):
    """Prints the report; returns the list of errors."""
    root = os.path.normpath(root)
    errors = []
    # edges[(a, b)] = ["file:line", ...] for module a including module b.
    edges = {}
    libs = {}
    allowed_seen = []
    modules = set()
    files = sources(root)
    for rel in files:
        mod = module_of(rel)
        modules.add(mod)
        with open(os.path.join(root, rel), encoding="utf-8",
                  errors="replace") as f:
            text = strip_comments(f.read())
        for m in INCLUDE_RE.finditer(text):
            kind, header = m.group(1), m.group(2).strip()
            line = text.count("\n", 0, m.start()) + 1
            where = f"{rel}:{line}"
            if kind == "<":
                lib = library_of(header)
                if lib is None:
                    continue
                libs.setdefault((mod, lib), []).append(where)
                if mod not in LIBRARIES[lib][1]:
                    allowed = ", ".join(sorted(LIBRARIES[lib][1])) or \
                        "no module under the root"
                    errors.append(
                        f"{where}: module {mod} includes <{header}> of "
                        f"library {lib}, which is only for: {allowed}")
                continue
            here = os.path.join(os.path.dirname(rel), header)
            if os.path.isfile(os.path.join(root, here)):
                target = os.path.normpath(here).replace(os.sep, "/")
            elif os.path.isfile(os.path.join(root, header)):
                target = os.path.normpath(header).replace(os.sep, "/")
            elif header in GENERATED:
                target = header
            else:
                errors.append(f'{where}: "{header}" is not found next to '
                              f"the file nor under {root}/")
                continue
            dep = module_of(target)
            if dep == mod:
                continue
            edges.setdefault((mod, dep), []).append(where)
            if mod in STAGES and dep in STAGE_FORBIDDEN:
                if (rel, header) in ALLOWED_FOR_NOW:
                    allowed_seen.append((where, header))
                else:
                    errors.append(
                        f'{where}: stage {mod} includes "{header}" of '
                        f"{dep}; a stage must not include "
                        f"{', '.join(STAGE_FORBIDDEN)}")

    graph = {}
    for (a, b) in edges:
        graph.setdefault(a, set()).add(b)
    for comp in sccs(graph):
        cycle = find_cycle(graph, comp)
        ring = " -> ".join(cycle + [cycle[0]])
        lines = []
        for a, b in zip(cycle, cycle[1:] + cycle[:1]):
            lines.append(f"    {a} -> {b}: " + ", ".join(edges[(a, b)]))
        errors.append(f"include cycle between modules: {ring}\n" +
                      "\n".join(lines))

    print(f"include graph of {root}/: {len(files)} files, "
          f"{len(modules)} modules")
    width = max((len(m) for m in modules), default=0)
    for mod in sorted(modules, key=order_key):
        deps = sorted((b for (a, b) in edges if a == mod), key=order_key)
        text = ", ".join(f"{b} ({len(edges[(mod, b)])})" for b in deps)
        used = sorted(lib for (a, lib) in libs if a == mod)
        lib_text = ", ".join(f"{lib} ({len(libs[(mod, lib)])})"
                             for lib in used)
        print(f"  {mod:<{width}} -> {text or '-'}"
              + (f"  [libs: {lib_text}]" if lib_text else ""))
    if allowed_seen:
        print("allowed for now (ALLOWED_FOR_NOW, to be removed):")
        for where, header in allowed_seen:
            print(f'  {where}: "{header}"')
    seen = {(w.split(":")[0], h) for w, h in allowed_seen}
    for rel, header in sorted(ALLOWED_FOR_NOW - seen):
        if os.path.isfile(os.path.join(root, rel)):
            print(f'note: ALLOWED_FOR_NOW lists {rel} including "{header}", '
                  "which it no longer does: remove the entry")
    return errors


def main(argv):
    root = argv[1] if len(argv) > 1 else "processor"
    if len(argv) > 2 or not os.path.isdir(root):
        print(f"usage: {argv[0]} [ROOT]  (ROOT: a folder, default "
              "processor/)", file=sys.stderr)
        return 2
    errors = lint(root)
    for e in errors:
        print(f"lint: {e}", file=sys.stderr)
    if errors:
        print(f"lint: {len(errors)} error(s)", file=sys.stderr)
        return 1
    print("lint: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
