"""The layout of the code: imports point one way, files stay small, apps stay thin.

Layers: apps -> (training, evaluation) -> (models, preprocessing). Evaluation may use the
harness (`training.saving` caches the evaluation-only feature classifier with the one safe
loader), never the reverse. Read from the source with `ast`; nothing is imported or run.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("apps", "training", "evaluation", "models", "preprocessing")
MAX_LINES = 300
MAX_APPS_SHARE = 0.30
# The one import across models and preprocessing: the digit pipelines convert uint8 images
# to the [-1, 1] range the tanh generators define, with the models' own conversion.
ALLOWED = {("preprocessing", "models.pixels")}
# Where each layer may not import from.
FORBIDDEN = {
    "training": ("apps", "evaluation"),
    "evaluation": ("apps",),
    "models": ("apps", "training", "evaluation", "preprocessing"),
    "preprocessing": ("apps", "training", "evaluation", "models"),
}


def sources() -> list[Path]:
    """Every non-test Python file of the project."""
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """The full names of the modules `path` imports, at any depth (`from a import b` gives
    `a.b`, which also counts as `a`)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def package(name: str) -> str:
    return name.split(".")[0]


def within(name: str, module: str) -> bool:
    """Whether the imported `name` is `module` or inside it."""
    return name == module or name.startswith(f"{module}.")


def test_imports_point_one_way():
    wrong = []
    for path in sources():
        layer = path.relative_to(ROOT).parts[0]
        for name in imported(path):
            if any(layer == lay and within(name, m) for lay, m in ALLOWED):
                continue
            if package(name) in FORBIDDEN.get(layer, ()):
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_no_app_imports_another_app():
    shared = ("apps.common", "apps.registry")
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / "apps").glob("*.py"))
        for name in imported(path)
        if within(name, "apps") and name != "apps" and not any(within(name, s) for s in shared)
    ]
    assert not wrong, "\n".join(wrong)


def test_only_the_registry_imports_modules_by_name():
    def calls_import_module(path: Path) -> bool:
        return any(
            (isinstance(node, ast.Attribute) and node.attr == "import_module")
            or (isinstance(node, ast.Name) and node.id == "import_module")
            or (isinstance(node, ast.alias) and node.name == "import_module")
            for node in ast.walk(ast.parse(path.read_text()))
        )

    users = [path.relative_to(ROOT).as_posix() for path in sources() if calls_import_module(path)]
    assert users == ["apps/registry.py"]


def line_counts() -> dict[str, int]:
    return {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines()) for p in sources()}


def test_no_file_over_300_lines():
    counts = line_counts()
    longest = max(counts, key=counts.get)
    print(f"longest: {longest}, {counts[longest]} lines")
    assert {f: n for f, n in counts.items() if n > MAX_LINES} == {}


def test_apps_hold_at_most_30_percent_of_the_lines():
    counts = line_counts()
    apps = sum(n for f, n in counts.items() if f.startswith("apps/"))
    share = apps / sum(counts.values())
    print(f"apps: {apps} of {sum(counts.values())} lines ({share:.1%})")
    assert share <= MAX_APPS_SHARE


def test_the_checks_see_a_wrong_import(tmp_path):
    """The parser finds imports at any depth, so the checks above can fail."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from apps import train_pixelda\n    import training.saving\n")
    assert imported(module) == {"apps.train_pixelda", "training.saving"}
