"""Small helpers for comparing arrays in tests."""
import numpy as np


def rel_error(actual, expected, scale=0.0):
    """max |actual - expected| relative to the largest |expected|, or to ``scale`` if larger
    (for results that are small differences of large terms). 0 for two empty arrays. Complex arrays
    compare whole: |.| is the complex modulus."""
    as_complex = np.iscomplexobj(actual) or np.iscomplexobj(expected)
    wide = np.complex128 if as_complex else np.float64
    actual, expected = np.asarray(actual, dtype=wide), np.asarray(expected, dtype=wide)
    assert actual.shape == expected.shape, f"shapes differ: {actual.shape} vs {expected.shape}"
    if actual.size == 0:
        return 0.0
    return float(np.abs(actual - expected).max() / max(np.abs(expected).max(), scale, 1e-30))


def conv_term_scales(x, w, b, grad_y, args):
    """The largest sum of absolute terms in conv2d's y, dL/dx, dL/dw and dL/db (``args``: stride,
    padding pairs, groups): the scale of the rounding in sums whose terms cancel (a one-pixel
    output of 27 terms near 1 can be 0.01, and two float32 algorithms then differ by 1e-4 of it:
    Hypothesis's thorough profile found such cases)."""
    from minicnn.kernels.reference import conv as ref

    x, w, grad_y = np.abs(x), np.abs(w), np.abs(grad_y)
    y = ref.conv2d_forward(x, w, None if b is None else np.abs(b), *args)
    return [float(a.max(initial=0.0)) for a in (y, *ref.conv2d_backward(x, w, grad_y, *args))]


def tolerance(dtype):
    """Relative tolerance between two implementations of the same sum in ``dtype``."""
    return 1e-5 if np.dtype(dtype) == np.float32 else 1e-12


def pool_windows(pool, x, *args, **kwargs):
    """The (rows, cols) windows that ``pool`` (F.avg_pool2d or F.adaptive_avg_pool2d) works out
    for the array x and passes to its kernels, caught on their way in."""
    import minicnn as mc
    caught = {}
    original = mc.functional.AvgPool2d.apply

    def catch(x, rows, cols, kernels):
        caught.update(rows=rows, cols=cols)
        return original(x, rows, cols, kernels)

    try:
        mc.functional.AvgPool2d.apply = catch
        pool(mc.tensor(x), *args, **kwargs)
    finally:
        mc.functional.AvgPool2d.apply = original
    return caught["rows"], caught["cols"]
