"""No module of the engine imports itself back through other modules.

The layers contract in pyproject.toml (``lint-imports``) keeps the packages in order; this
keeps the modules in order, inside a package too. Imports made only for type checking count:
a cycle in the types is still a cycle for a reader. The graph is grimp's, the one
import-linter checks.
"""

from __future__ import annotations

import grimp
import networkx as nx

Cycle = list[tuple[str, str]]  # the imports of a cycle, in order


def import_cycles(graph: grimp.ImportGraph) -> list[tuple[list[str], Cycle]]:
    """Each group of modules that import each other, with one cycle through it."""
    imports = nx.DiGraph()
    for module in sorted(graph.modules):
        imports.add_node(module)
        imported = sorted(graph.find_modules_directly_imported_by(module))
        imports.add_edges_from((module, i) for i in imported)
    groups = nx.strongly_connected_components(imports)
    tangled = [g for g in groups if len(g) > 1 or any(imports.has_edge(m, m) for m in g)]
    return [(sorted(g), nx.find_cycle(imports.subgraph(g))) for g in sorted(tangled, key=sorted)]


def explain(graph: grimp.ImportGraph, group: list[str], cycle: Cycle) -> str:
    lines = [f"{len(group)} modules import each other: {', '.join(group)}; one cycle:"]
    for importer, imported in cycle:
        details = graph.get_import_details(importer=importer, imported=imported)
        at = ", ".join(f"l.{d['line_number']}" for d in details)
        lines.append(f"  {importer} -> {imported} ({at})")
    return "\n".join(lines)


def test_no_module_imports_itself_back() -> None:
    graph = grimp.build_graph("engine", cache_dir=None)
    assert len(graph.modules) > 50, "grimp found too few modules: is `engine` importable?"
    cycles = import_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n\n".join(explain(graph, *c) for c in cycles)


def test_a_cycle_is_found_and_explained() -> None:
    graph = grimp.ImportGraph()
    for importer, imported, line in (("p.a", "p.b", 3), ("p.b", "p.c", 4), ("p.c", "p.a", 5)):
        graph.add_import(importer=importer, imported=imported, line_number=line, line_contents="")
    graph.add_import(importer="p.c", imported="p.d", line_number=6, line_contents="")
    ((group, cycle),) = import_cycles(graph)
    assert group == ["p.a", "p.b", "p.c"]
    assert sorted(cycle) == [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a")]
    assert "  p.c -> p.a (l.5)" in explain(graph, group, cycle).splitlines()
    graph.remove_import(importer="p.c", imported="p.a")
    assert import_cycles(graph) == []
