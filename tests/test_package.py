"""Packaging: the top-level kernels/ folder installs as minicnn.kernels, never as a
top-level ``kernels`` module (an unrelated PyPI package has that name)."""
import importlib.metadata
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import minicnn as mc

ROOT = Path(__file__).resolve().parent.parent


def test_kernels_import_as_part_of_minicnn():
    from minicnn.kernels.cpu import conv
    from minicnn.kernels.reference import conv as reference

    assert conv.conv2d_forward and reference.conv2d_forward
    assert mc.functional.conv2d and mc.gradcheck and mc.no_grad and mc.Tensor


def test_the_installed_distribution_has_one_top_level_package():
    top_level = importlib.metadata.distribution("minicnn").read_text("top_level.txt")
    assert top_level.split() == ["minicnn"]


def test_no_top_level_kernels_module_outside_the_source_tree(tmp_path):
    code = "import importlib.util, minicnn.kernels; print(importlib.util.find_spec('kernels'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
                         timeout=120)
    assert out.stdout.strip() == "None"


@pytest.mark.slow
def test_a_built_wheel_maps_kernels_into_minicnn(tmp_path):
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, env={**os.environ, "PIP_NO_INPUT": "1"}, timeout=600,
    )
    (wheel,) = tmp_path.glob("minicnn-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for path in ("minicnn/kernels/cpu/conv/__init__.py", "minicnn/kernels/cpu/conv/winograd.py", "minicnn/kernels/reference/conv.py", "minicnn/kernels/cuda/conv.py",
                 "minicnn/nn/layers.py", "minicnn/models/alexnet.py"):
        assert path in names, path
    assert not [n for n in names if n.startswith("kernels/")]
