"""Issue 20's "done when": a PyTorch user's training script, written once against a module called
``torch``, runs unchanged on minicnn (``import minicnn as torch``) and on PyTorch, and the two
give the same losses, accuracy and saved weights in float64 (1e-10)."""
import numpy as np


def pytorch_users_script(torch, path, initial=None):
    """What a PyTorch user writes: TensorDataset, DataLoader, nn.CrossEntropyLoss, argmax, ==,
    indexing, view, param_groups, a scheduler from optim.lr_scheduler, save and load."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((24, 1, 8, 8))
    classes = rng.integers(0, 3, 24)
    x = torch.tensor(images, dtype=torch.float64)
    y = torch.tensor(classes)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 3))
    model.double()
    if initial is not None:  # the same starting weights in both
        model.load_state_dict({name: torch.tensor(value) for name, value in initial.items()})
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    losses = []
    for epoch in range(4):
        for xb, yb in loader:
            loss = loss_fn(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        schedule.step()
        if epoch == 2:
            optimizer.param_groups[0]["lr"] = 0.02
    with torch.no_grad():
        logits = model(x)
        accuracy = (logits.argmax(1) == y).float().mean().item()
        first_row = logits[0].view(1, -1)
    torch.save(model.state_dict(), path)
    saved = torch.load(path)
    weights = {name: np.asarray(value.numpy() if hasattr(value, "numpy") else value) for name, value in saved.items()}
    return losses, accuracy, first_row.numpy(), weights


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
