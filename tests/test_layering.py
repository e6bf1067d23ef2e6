"""The layers of docs/architecture.md: the applications import the engine, never the reverse."""
import subprocess
import sys


def _modules_loaded_by(code):
    probe = f"import sys; {code}; print(' '.join(sorted(m for m in sys.modules if m.startswith('minicnn'))))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    return set(out.stdout.split())


def test_the_engine_loads_no_application_module():
    loaded = _modules_loaded_by("import minicnn, minicnn.functional, minicnn.nn, minicnn.models, minicnn.optim, "
                                "minicnn.data, minicnn.gradcheck")
    assert "minicnn.functional" in loaded and "minicnn.models" in loaded  # the probe saw the engine load
    assert not [m for m in loaded if m.startswith("minicnn.apps")]



def test_the_kernels_import_nothing_of_the_engine_above_them():
    """kernels/ sees only itself and minicnn.errors: the engine calls the kernels, never the reverse."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "kernels"
    files = sorted(root.rglob("*.py"))
    assert len(files) > 30
    for path in files:
        package = ["minicnn", "kernels", *path.relative_to(root).parent.parts]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                target = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            elif isinstance(node, ast.ImportFrom):
                target = node.module
            elif isinstance(node, ast.Import):
                target = node.names[0].name
            else:
                continue
            if target.startswith("minicnn"):
                assert target.startswith("minicnn.kernels") or target == "minicnn.errors", (path, target)
