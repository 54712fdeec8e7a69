"""Imports point down the layers: kernels ← core ← {engines, realtime, training} ← commands/cli.

Every module of the installed packages is parsed; imports inside functions and under
``TYPE_CHECKING`` count, and so does ``importlib.import_module`` of a literal (or of an f-string's
literal prefix). The README's package layout table states the same rule. Light modules also stay
light when imported: what they load is checked in a fresh interpreter.
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = ("kernels", "engines", "realtime", "training")  # jr2net.NAME, each a layer of its own
CLI = ("commands", "cli")  # jr2net.NAME, the top layer
OUTSIDE = ("bench", "tests")  # run from the checkout, never installed: nothing installed imports them
MAY_IMPORT = {  # a layer: the layers its modules may import
    "kernels": {"kernels"},
    "core": {"kernels", "core"},
    "engines": {"kernels", "core", "engines"},
    "realtime": {"kernels", "core", "realtime"},
    "training": {"kernels", "core", "training"},
    "commands": {"kernels", "core", "engines", "realtime", "training", "commands"},
}


def layer(module: str) -> str | None:
    """The layer of a dotted module name; None for a module outside the project (numpy, say)."""
    top, _, rest = module.partition(".")
    if top in OUTSIDE:
        return top
    if top != "jr2net":
        return None
    second = rest.partition(".")[0]
    if second in SUBPACKAGES:
        return second
    return "commands" if second in CLI else "core"


def _import_module_target(call: ast.Call) -> str | None:
    """What ``importlib.import_module(...)`` imports, where its argument says statically."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name != "import_module" or not call.args:
        return None
    argument = call.args[0]
    if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
        return argument.value
    if (
        isinstance(argument, ast.JoinedStr)
        and argument.values
        and isinstance(argument.values[0], ast.Constant)
    ):
        return str(argument.values[0].value).rpartition(".")[0] or None  # the package before the placeholder
    return None


def imported(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """``(line, dotted name)`` of everything a module imports, anywhere in it; ``from A import B``
    gives ``A.B`` (B may be a submodule), relative imports resolved against ``module``."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and (target := _import_module_target(node)):
            found.append((node.lineno, target))
    return found


def violations(source: str, module: str, path: str, is_package: bool = False) -> list[str]:
    """``path:line: ...`` for each import of ``module``'s source that points up or sideways."""
    own = layer(module)
    problems = []
    for line, target in imported(ast.parse(source, path), module, is_package):
        other = layer(target)
        if other is not None and other not in MAY_IMPORT[own]:
            problems.append(f"{path}:{line}: {module} ({own}) imports {target} ({other})")
    return problems


def installed_modules() -> list[tuple[Path, str, bool]]:
    """``(file, module, is_package)`` for every .py of the jr2net packages, found where they install from."""
    modules = []
    for package in ("jr2net", *(f"jr2net.{name}" for name in SUBPACKAGES)):
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations, package
        folder = Path(next(iter(spec.submodule_search_locations)))
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            modules.append((path, ".".join([package, *parts[: -1 if is_package else None]]), is_package))
    return modules


def test_every_import_points_down_the_layers() -> None:
    modules = installed_modules()
    assert {layer(module) for _, module, _ in modules} == set(MAY_IMPORT), "every layer was scanned"
    problems = [
        problem
        for path, module, is_package in modules
        for problem in violations(path.read_text(), module, str(path.relative_to(ROOT)), is_package)
    ]
    assert not problems, "imports that point up or sideways:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("module", "source", "line", "target"),
    [
        (
            "jr2net.estimators",
            "def f():\n    from jr2net.engines.runners import make_runner\n",
            2,
            "jr2net.engines",
        ),
        ("jr2net.media", "from jr2net import commands\n", 1, "jr2net.commands"),
        ("jr2net.commands.method", "import bench.timing\n", 1, "bench.timing"),
        ("jr2net.kernels.sh", "import os\n\nfrom ..params import FaceParams\n", 3, "jr2net.params"),
        ("jr2net.kernels.dispatch", "importlib.import_module('jr2net.render')\n", 1, "jr2net.render"),
        ("jr2net.engines.runners", "import jr2net.realtime.pipeline as pipeline\n", 1, "jr2net.realtime"),
        (
            "jr2net.realtime.server",
            "import typing\nif typing.TYPE_CHECKING:\n    from jr2net.training import crop_dataset\n",
            3,
            "jr2net.training",
        ),
        ("jr2net.training.crop_cache", "from jr2net.cli import main\n", 1, "jr2net.cli"),
    ],
)
def test_an_import_up_or_sideways_is_reported_with_its_line(
    module: str, source: str, line: int, target: str
) -> None:
    path = module.replace(".", "/") + ".py"
    [problem] = violations(source, module, path)
    assert problem.startswith(f"{path}:{line}: {module} ") and f"imports {target}" in problem


@pytest.mark.parametrize(
    ("module", "source", "is_package"),
    [
        (
            "jr2net.commands.live",
            "from jr2net.engines.runners import make_runner\nimport jr2net.realtime\n",
            False,
        ),
        ("jr2net.realtime.reenactment", "from jr2net.reconstruct import Reconstructor\n", False),
        (
            "jr2net.kernels.dispatch",
            "from . import sh\nimportlib.import_module(f'jr2net.kernels.{op}')\n",
            False,
        ),
        ("jr2net.kernels", "from .dispatch import run\nimport numpy\n", True),
        ("jr2net.nets.recnet", "from jr2net.kernels import sh\nfrom .. import __version__\n", False),
    ],
)
def test_imports_down_or_within_a_layer_pass(module: str, source: str, is_package: bool) -> None:
    assert violations(source, module, "x.py", is_package) == []


@pytest.mark.parametrize(
    ("module", "heavy"),
    [
        ("jr2net.realtime.pipeline", ("torch", "numba")),  # a generic asyncio pipeline
        ("jr2net.realtime.reenactment_hosts", ("torch", "numba", "mediapipe")),  # a session's view
        ("jr2net.realtime.ray_sessions", ("torch", "numba", "mediapipe", "cv2", "aiohttp")),  # routes frames
        ("jr2net.commands.method", ("jr2net.realtime.reenactment", "jr2net.engines.runners")),
    ],
)
def test_a_light_module_loads_no_heavy_stack(module: str, heavy: tuple[str, ...]) -> None:
    code = f"import sys, {module}; print(' '.join(sorted(set({heavy!r}) & set(sys.modules))))"
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert loaded.split() == [], f"importing {module} loads {loaded.strip()}"


def test_the_process_host_imports_nothing_of_what_it_hosts() -> None:
    """A generic host: the reenactment workers and the face model come in through its caller's
    picklable preload and factory, never through an import of its own (lazy ones included)."""
    spec = importlib.util.find_spec("jr2net.realtime.process_stage")
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text())
    targets = [target for _, target in imported(tree, "jr2net.realtime.process_stage", is_package=False)]
    assert not [t for t in targets if t.startswith(("jr2net.realtime.reenactment", "jr2net.face_model"))]
