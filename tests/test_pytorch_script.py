"""Issue 20's "done when": a PyTorch user's training script (``benchmarks/pytorch_loop.py``, which
also times it on both), written once against a module called ``torch``, runs unchanged on minicnn
(``import minicnn as torch``) and on PyTorch, and the two give the same losses, accuracy and saved
weights in float64 (1e-10)."""
import numpy as np

from benchmarks.pytorch_loop import users_script as pytorch_users_script  # (also timed there, side by side)


def test_the_same_script_on_minicnn_and_on_pytorch(tmp_path, torch):
    import minicnn

    start = {name: np.array(value) for name, value in
             minicnn.nn.Sequential(minicnn.nn.Conv2d(1, 4, 3, padding=1), minicnn.nn.ReLU(), minicnn.nn.MaxPool2d(2),
                                   minicnn.nn.Flatten(), minicnn.nn.Linear(64, 3)).double().state_dict().items()}
    ours = pytorch_users_script(minicnn, tmp_path / "ours.mc", start)
    theirs = pytorch_users_script(torch, tmp_path / "theirs.pt", start)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-10)
    assert ours[1] == theirs[1]
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-10)
    assert list(ours[3]) == list(theirs[3])
    for name in ours[3]:
        np.testing.assert_allclose(ours[3][name], theirs[3][name], rtol=1e-10, atol=1e-12)
