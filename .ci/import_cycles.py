"""Fail when the modules of checker/ and rules/ import each other in a cycle (static imports, function-level
ones included). Run by .ci/run next to `lint-imports` (the layering contracts in .importlinter)."""

from __future__ import annotations

import sys

import grimp


def main() -> int:
    graph = grimp.build_graph("modelcheck", "modelcheck_rules")
    modules = sorted(graph.modules)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in modules}
    # a package's __init__ importing its own submodules is how packages work, not a cycle
    for m in modules:
        edges[m] = {d for d in edges[m] if not d.startswith(m + ".")}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:  # Tarjan's algorithm, iterative enough for ~100 modules
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for m in modules:
        if m not in index:
            strongconnect(m)
    for comp in cycles:
        print("import cycle: " + " <-> ".join(comp))
    print(f"import cycles: {len(cycles)} among {len(modules)} modules")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
