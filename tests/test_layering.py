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

