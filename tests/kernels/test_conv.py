"""conv2d: CPU kernel vs reference, gradcheck, PyTorch parity."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minicnn as mc
from minicnn.functional import conv2d_padding
from minicnn.kernels.cpu import conv as cpu
from minicnn.kernels.cpu import spectral, winograd, workspace
from minicnn.kernels.reference import conv as ref
from tests.helpers import rel_error, tolerance
from tests.strategies import FLOAT_DTYPES, conv_cases, normal, seeds

F = mc.functional


def _arrays(case, seed, dtype):
    x = normal(seed, case["x_shape"], dtype)
    w = normal(seed + 1, case["w_shape"], dtype)
    b = normal(seed + 2, case["w_shape"][:1], dtype) if case["bias"] else None
    return x, w, b


@given(case=conv_cases(), seed=seeds, dtype=FLOAT_DTYPES)
def test_cpu_matches_reference(case, seed, dtype):
    x, w, b = _arrays(case, seed, dtype)
    padding = conv2d_padding(case["padding"], x.shape[2:], w.shape[2:], case["stride"])
    args = (case["stride"], padding, case["groups"])
    y = cpu.conv2d_forward(x, w, b, *args)
    expected = ref.conv2d_forward(x, w, b, *args)
    assert y.dtype == dtype and y.shape == expected.shape
    assert rel_error(y, expected) < tolerance(dtype)
    grad_y = normal(seed + 3, y.shape, dtype)
    for got, want in zip(cpu.conv2d_backward(x, w, grad_y, *args), ref.conv2d_backward(x, w, grad_y, *args)):
        assert got.dtype == dtype
        assert rel_error(got, want) < tolerance(dtype)


@given(case=conv_cases(max_size=7), seed=seeds)
def test_gradcheck(case, seed):
    x, w, b = (None if a is None else mc.tensor(a, requires_grad=True) for a in _arrays(case, seed, np.float64))
    kwargs = {k: case[k] for k in ("stride", "padding", "groups")}
    inputs = [x, w] + ([b] if b is not None else [])
    mc.gradcheck(lambda x, w, *b: F.conv2d(x, w, *b, **kwargs), inputs)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, groups", [
    ((1, 3, 23, 23), (2, 3, 11, 11), 4, 0, 1),  # conv1's 11x11 kernel at stride 4
    ((2, 4, 7, 7), (4, 2, 5, 5), 1, 2, 2),  # conv2's two groups, 5x5 pad 2
    ((1, 4, 5, 5), (6, 2, 3, 3), 1, 1, 2),  # conv4/conv5: 3x3 pad 1, groups 2
])
def test_gradcheck_alexnet_settings(x_shape, w_shape, stride, padding, groups):
    x = mc.tensor(normal(0, x_shape), requires_grad=True)
    w = mc.tensor(normal(1, w_shape), requires_grad=True)
    b = mc.tensor(normal(2, w_shape[:1]), requires_grad=True)
    result = mc.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride, padding, groups), [x, w, b], max_coords=200)
    assert result.ok and result.checked > 200


@given(case=conv_cases(), seed=seeds)
def test_matches_torch(torch, case, seed):
    x, w, b = _arrays(case, seed, np.float32)
    kwargs = {k: case[k] for k in ("stride", "padding", "groups")}
    tx = torch.tensor(x, requires_grad=True)
    torch_in, torch_kwargs = tx, kwargs
    if kwargs["padding"] == "same" and kwargs["stride"] != (1, 1):
        # PyTorch refuses "same" with stride > 1; pad explicitly with the TensorFlow rule instead.
        (top, bottom), (left, right) = conv2d_padding("same", x.shape[2:], w.shape[2:], kwargs["stride"])
        torch_in = torch.nn.functional.pad(tx, (left, right, top, bottom))
        torch_kwargs = dict(kwargs, padding=0)
    tw = torch.tensor(w, requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    ty = torch.nn.functional.conv2d(torch_in, tw, tb, **torch_kwargs)

    mx, mw = mc.tensor(x, requires_grad=True), mc.tensor(w, requires_grad=True)
    mb = None if b is None else mc.tensor(b, requires_grad=True)
    y = F.conv2d(mx, mw, mb, **kwargs)
    assert rel_error(y.data, ty.detach().numpy()) < 1e-4

    grad_y = normal(seed + 5, y.shape, np.float32)
    ty.backward(torch.tensor(grad_y))
    y.backward(grad_y)
    assert rel_error(mx.grad, tx.grad.numpy()) < 1e-4
    assert rel_error(mw.grad, tw.grad.numpy()) < 1e-4
    if b is not None:
        assert rel_error(mb.grad, tb.grad.numpy()) < 1e-4


def test_same_padding_keeps_the_size_at_stride_1():
    x = mc.tensor(normal(0, (1, 2, 7, 6), np.float32))
    for k in (1, 2, 3, 4, 5):
        w = mc.tensor(normal(1, (3, 2, k, k), np.float32))
        assert F.conv2d(x, w, padding="same").shape == (1, 3, 7, 6)
    w = mc.tensor(normal(1, (3, 2, 11, 11), np.float32))
    assert F.conv2d(mc.tensor(normal(0, (1, 2, 227, 227), np.float32)), w, stride=4, padding="same").shape == (1, 3, 57, 57)


def test_input_gradient_is_skipped_when_not_needed():
    x = mc.tensor(normal(0, (1, 2, 5, 5), np.float32))
    w = mc.tensor(normal(1, (3, 2, 3, 3), np.float32), requires_grad=True)
    F.conv2d(x, w).sum().backward()
    assert x.grad is None and w.grad.shape == (3, 2, 3, 3)


def _matches_reference_with(module, setting, value, x, w, b, args, seed):
    """Run the CPU kernel with ``module.setting = value`` and compare all its results with the reference."""
    saved = getattr(module, setting)
    setattr(module, setting, value)
    try:
        y = cpu.conv2d_forward(x, w, b, *args)
        grad_y = normal(seed + 3, y.shape, x.dtype)
        grads = cpu.conv2d_backward(x, w, grad_y, *args)
    finally:
        setattr(module, setting, saved)
    assert y.dtype == x.dtype and rel_error(y, ref.conv2d_forward(x, w, b, *args)) < tolerance(x.dtype)
    for got, want in zip(grads, ref.conv2d_backward(x, w, grad_y, *args)):
        assert got.dtype == x.dtype and rel_error(got, want) < tolerance(x.dtype)


@given(case=conv_cases(), seed=seeds)
def test_one_image_per_block_matches_reference(case, seed):
    """The kernel cuts the batch into blocks of images (``BLOCK_BYTES``); at the AlexNet sizes
    a batch of 64 makes 4 to 10 blocks. Blocks of one image must give the reference's answer."""
    x, w, b = _arrays(case, seed, np.float64)
    x = np.concatenate([x, 0.5 * x[::-1], -x])  # 3 to 6 images, so 3 to 6 blocks
    padding = conv2d_padding(case["padding"], x.shape[2:], w.shape[2:], case["stride"])
    _matches_reference_with(cpu, "BLOCK_BYTES", 1, x, w, b, (case["stride"], padding, case["groups"]), seed)


@given(case=conv_cases(kernel=(3, 3), stride=(1, 1)), seed=seeds, dtype=FLOAT_DTYPES)
def test_winograd_matches_reference(case, seed, dtype):
    """Stride-1 3x3 convolutions (AlexNet's conv3-5) take Winograd F(2x2, 3x3) for the output,
    dL/dx and dL/dw: odd and even sizes (tiles hanging over the edge), uneven padding, groups,
    blocks of one image and of the whole batch."""
    x, w, b = _arrays(case, seed, dtype)
    x = np.concatenate([x, -0.5 * x[::-1]])
    padding = conv2d_padding(case["padding"], x.shape[2:], w.shape[2:], case["stride"])
    assert winograd.applies(w.shape, case["stride"], padding)
    args = (case["stride"], padding, case["groups"])
    for block_bytes in (1, winograd.BLOCK_BYTES):
        _matches_reference_with(winograd, "BLOCK_BYTES", block_bytes, x, w, b, args, seed)


def test_winograd_entry_matrices_are_spaced_apart_and_change_nothing():
    """V, M, Z (and U, S) hold their 16 matrices ENTRY_PAD elements apart, in the scratch buffer
    itself (a view, not a copy), and the gap changes no result, bit for bit."""
    v = winograd._entries("test.entries", 6, 8, np.float32)
    assert v.strides == ((6 * 8 + winograd.ENTRY_PAD) * 4, 8 * 4, 4)
    v[:] = 7
    assert np.shares_memory(v, workspace.scratch("test.entries", (16, 6 * 8 + winograd.ENTRY_PAD), np.float32))
    x, w, b = normal(0, (3, 4, 7, 6), np.float32), normal(1, (6, 2, 3, 3), np.float32), normal(2, (6,), np.float32)
    grad_y = normal(3, (3, 6, 7, 6), np.float32)
    padding = ((1, 1), (1, 1))
    results = []
    for pad in (0, winograd.ENTRY_PAD):
        saved, winograd.ENTRY_PAD = winograd.ENTRY_PAD, pad
        try:
            results.append([winograd.conv2d_forward(x, w, b, padding, 2).copy(),
                            winograd.conv2d_input_grad(w, grad_y, padding, 2).copy(),
                            winograd.conv2d_weight_grad(x, grad_y, w.shape, padding, 2)[0].copy()])
        finally:
            winograd.ENTRY_PAD = saved
    for packed, spaced in zip(*results):
        np.testing.assert_array_equal(packed, spaced)


@given(case=conv_cases(kernel=(3, 3), stride=(1, 1)), seed=seeds)
def test_im2col_path_still_matches_for_3x3(case, seed):
    """With Winograd turned off, the same convolutions go through im2col and agree."""
    x, w, b = _arrays(case, seed, np.float64)
    padding = conv2d_padding(case["padding"], x.shape[2:], w.shape[2:], case["stride"])
    _matches_reference_with(cpu, "WINOGRAD", False, x, w, b, (case["stride"], padding, case["groups"]), seed)


@pytest.mark.parametrize("k, before, after", [(5, 2, 2), (5, 0, 4), (5, 4, 0), (3, 1, 2), (3, 0, 0), (2, 2, 2), (1, 2, 2)])
def test_stride_1_im2col_shares_the_padding_between_rows(k, before, after):
    """Stride 1's im2col lays the padded input out flat with rows W + max(left, right) apart
    (at least W_out, which padding wider than the kernel needs: k = 1 or 2 with pad 2)."""
    x = normal(0, (2, 3, 4, 6))
    w, b = normal(1, (4, 3, k, k)), normal(2, (4,))
    padding = ((before, after), (before, after))
    geo = cpu._Geometry(x.shape, w.shape, (1, 1), padding, 1, x.dtype.itemsize)
    assert geo.wide and geo.pitch == max(6 + max(before, after), geo.w_out)
    _matches_reference_with(cpu, "WINOGRAD", False, x, w, b, ((1, 1), padding, 1), seed=3)


@st.composite
def spectral_cases(draw):
    """Stride-1 convolutions that take the Fourier path: kernels of 5x5 to 6x7, at least 16
    input channels per group, any padding up to the kernel's reach, uneven too."""
    groups = draw(st.sampled_from([1, 2]))
    kh, kw = draw(st.integers(5, 6)), draw(st.integers(5, 7))
    padding = ((draw(st.integers(0, kh - 1)), draw(st.integers(0, kh - 1))),
               (draw(st.integers(0, kw - 1)), draw(st.integers(0, kw - 1))))
    h = draw(st.integers(max(1, kh - sum(padding[0])), 9))
    w = draw(st.integers(max(1, kw - sum(padding[1])), 9))
    c_g = draw(st.integers(spectral.MIN_CHANNELS, spectral.MIN_CHANNELS + 2))
    return {"x_shape": (draw(st.integers(1, 3)), c_g * groups, h, w),
            "w_shape": (draw(st.integers(1, 3)) * groups, c_g, kh, kw), "padding": padding, "groups": groups}


@pytest.fixture
def spectral_at_any_batch(monkeypatch):
    """The Fourier path also for batches smaller than 2 images per thread (the tests' shapes)."""
    monkeypatch.setattr(spectral, "MIN_IMAGES_PER_THREAD", 0)


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])  # it sets a constant
@given(case=spectral_cases(), seed=seeds, dtype=FLOAT_DTYPES)
def test_spectral_matches_reference(spectral_at_any_batch, case, seed, dtype):
    """conv2's path (products of Fourier transforms) gives the reference's output, dL/dx, dL/dw
    and dL/db, at odd and even sizes, uneven padding and groups, and skips what is not needed."""
    x, w = normal(seed, case["x_shape"], dtype), normal(seed + 1, case["w_shape"], dtype)
    b = normal(seed + 2, case["w_shape"][:1], dtype)
    args = ((1, 1), case["padding"], case["groups"])
    assert cpu.takes_spectral(w.shape, *args[:2], x.shape[0])
    y = cpu.conv2d_forward(x, w, b, *args)
    expected = ref.conv2d_forward(x, w, b, *args)
    assert y.dtype == dtype and y.shape == expected.shape and rel_error(y, expected) < tolerance(dtype)
    grad_y = normal(seed + 3, y.shape, dtype)
    wanted = ref.conv2d_backward(x, w, grad_y, *args)
    for needs in ((True, True, True), (True, False, False), (False, True, True)):
        got = cpu.conv2d_backward(x, w, grad_y, *args, needs_input_grad=needs)
        for g, want, needed in zip(got, wanted, needs):
            assert (g is None) == (not needed)
            if needed:
                assert g.dtype == dtype and g.shape == want.shape and rel_error(g, want) < tolerance(dtype)


def test_spectral_gradcheck_and_conv2s_shape(spectral_at_any_batch):
    """Finite differences through the Fourier path (float64), and conv2's own shape, two groups
    of 48 channels at 27x27 with 5x5 kernels, against the im2col path in float32."""
    x = mc.tensor(normal(0, (2, 32, 6, 7)), requires_grad=True)
    w = mc.tensor(normal(1, (4, 16, 5, 5)), requires_grad=True)
    b = mc.tensor(normal(2, (4,)), requires_grad=True)
    assert cpu.takes_spectral(w.shape, (1, 1), ((2, 2), (2, 2)), 2)
    result = mc.gradcheck(lambda x, w, b: F.conv2d(x, w, b, 1, 2, 2), [x, w, b], max_coords=200)
    assert result.ok and result.checked > 200
    x, w, b = normal(3, (3, 96, 27, 27), np.float32), normal(4, (256, 48, 5, 5), np.float32, 0.05), normal(5, (256,), np.float32)
    args = ((1, 1), ((2, 2), (2, 2)), 2)
    y = cpu.conv2d_forward(x, w, b, *args).copy()
    grad_y = normal(6, y.shape, np.float32)
    grads = [g.copy() for g in cpu.conv2d_backward(x, w, grad_y, *args)]
    cpu.SPECTRAL = False
    try:
        assert not cpu.takes_spectral(w.shape, *args[:2], 3)
        y_im2col = cpu.conv2d_forward(x, w, b, *args)
        grads_im2col = cpu.conv2d_backward(x, w, grad_y, *args)
    finally:
        cpu.SPECTRAL = True
    assert rel_error(y, y_im2col) < tolerance(np.float32)
    for g, want in zip(grads, grads_im2col):
        assert rel_error(g, want) < tolerance(np.float32)


@pytest.mark.parametrize("w_shape, stride, batch, threads, expected", [
    ((4, 16, 5, 5), (1, 1), 4, 2, True),
    ((4, 48, 5, 5), (1, 1), 64, 2, True),  # conv2
    ((4, 48, 5, 5), (1, 1), 64, 16, True),
    ((4, 48, 5, 5), (1, 1), 16, 16, False),  # one image per thread: im2col's large products win
    ((4, 48, 5, 5), (1, 1), 3, 2, False),
    ((4, 15, 5, 5), (1, 1), 64, 2, False),  # too few channels: the transforms would cost more than they save
    ((4, 16, 5, 5), (2, 2), 64, 2, False),
    ((4, 16, 3, 3), (1, 1), 64, 2, False),  # Winograd's
    ((4, 16, 5, 4), (1, 1), 64, 2, False),
])
def test_spectral_applies_to_stride_1_kernels_of_5x5_and_more(w_shape, stride, batch, threads, expected, monkeypatch):
    monkeypatch.setattr(spectral.numba, "get_num_threads", lambda: threads)
    assert spectral.applies(w_shape, stride, ((2, 2), (2, 2)), batch) is expected


@pytest.mark.parametrize("w_shape, stride, padding, expected", [
    ((4, 2, 3, 3), (1, 1), ((1, 1), (1, 1)), True),
    ((4, 2, 3, 3), (1, 1), ((0, 2), (2, 0)), True),
    ((4, 2, 3, 3), (2, 2), ((1, 1), (1, 1)), False),  # stride 2
    ((4, 2, 3, 3), (1, 1), ((3, 3), (1, 1)), False),  # padding beyond the kernel's reach
    ((4, 2, 5, 5), (1, 1), ((2, 2), (2, 2)), False),  # conv2's 5x5
    ((4, 2, 3, 1), (1, 1), ((1, 1), (0, 0)), False),
])
def test_winograd_applies_only_to_stride_1_3x3(w_shape, stride, padding, expected):
    assert winograd.applies(w_shape, stride, padding) is expected
