"""Network.to_torch(): the same function as a torch.nn.Sequential."""


def to_torch(net, probabilities=True):
    try:
        import torch
    except ImportError:
        raise ImportError("to_torch() needs PyTorch (pip install torch)") from None
    make = {
        "sigmoid": torch.nn.Sigmoid,
        "tanh": torch.nn.Tanh,
        "relu": torch.nn.ReLU,
        "leaky_relu": lambda: torch.nn.LeakyReLU(net.leaky_slope),
    }
    dtype = torch.float32 if net.dtype.name == "float32" else torch.float64
    layers = []
    for (w, b), act in zip(net.get_params(), net.activations):
        linear = torch.nn.Linear(w.shape[1], w.shape[0], dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
        layers.append(linear)
        if act != "identity":
            layers.append(make[act]())
    if probabilities and net.loss == "ce":
        layers.append(torch.nn.Softmax(dim=1))
    elif probabilities and net.loss == "bce":
        layers.append(torch.nn.Sigmoid())
    return torch.nn.Sequential(*layers)
