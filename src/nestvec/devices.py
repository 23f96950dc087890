"""Which torch device a name means, refused with a clear error where this machine has no such device."""

from __future__ import annotations

from nestvec.errors import InputError


def check_device(device: str | None) -> None:
    """Raise an InputError unless `device` is None, 'cpu', or a CUDA device torch can use here: asking
    for a GPU the machine lacks fails deep inside torch with an AssertionError otherwise."""
    if device is None or device == "cpu":
        return
    if device != "cuda" and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise InputError(f"Unknown device {device!r}. Valid choices: cpu, cuda, cuda:N (N a GPU's number).")
    import torch

    if not torch.cuda.is_available():
        raise InputError(
            f"device {device!r} was asked for, but torch sees no CUDA GPU on this machine "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}). Use device 'cpu'."
        )
    count = torch.cuda.device_count()
    if device.startswith("cuda:") and int(device[5:]) >= count:
        raise InputError(f"device {device!r} does not exist: this machine has {count} GPU(s), cuda:0–cuda:{count - 1}.")
