import pytest
import torch

from hoopray.models.device import DeviceUnavailableError, autocast, resolve_device

HAS_CUDA = torch.cuda.is_available()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("auto", "cuda" if HAS_CUDA else "cpu"),
        ("AUTO", "cuda" if HAS_CUDA else "cpu"),
        ("cpu", "cpu"),
        (" cpu ", "cpu"),
    ],
)
def test_resolve_device(name: str, expected: str) -> None:
    assert resolve_device(name) == expected


@pytest.mark.parametrize("name", ["", "gpu", "not-a-device"])
def test_resolve_device_rejects_unknown_names(name: str) -> None:
    with pytest.raises(ValueError, match="not a device"):
        resolve_device(name)


@pytest.mark.skipif(HAS_CUDA, reason="needs a machine without CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:3"])
def test_resolve_device_cuda_without_cuda_is_a_clear_error(name: str) -> None:
    with pytest.raises(DeviceUnavailableError, match="CUDA is not available"):
        resolve_device(name)


def test_autocast_on_cpu_changes_nothing() -> None:
    a = torch.ones(4, 4)
    with autocast("cpu"):
        assert not torch.is_autocast_enabled("cpu")
        assert not torch.is_autocast_enabled("cuda")
        assert (a @ a).dtype == torch.float32


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
def test_autocast_on_cuda_is_bf16() -> None:
    a = torch.ones(4, 4, device="cuda")
    with autocast("cuda"):
        assert (a @ a).dtype == torch.bfloat16
    assert (a @ a).dtype == torch.float32
