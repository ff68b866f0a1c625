"""The one accelerator table (peak bf16 FLOP/s and memory) used for MFU and memory plans."""

import pytest

from train.hardware import GPUS, find_gpu


@pytest.mark.parametrize("device_name, peak", [
    ("NVIDIA H100 PCIe", 756e12), ("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA A10G", 70e12), ("NVIDIA A10", 125e12),
    ("NVIDIA A100-SXM4-80GB", 312e12), ("NVIDIA L40S", 362e12), ("NVIDIA L4", 121e12), ("NVIDIA GH200 480GB", 989e12),
])
def test_most_specific_name_wins(device_name, peak):
    """A CUDA device name finds its own entry, not a shorter name it contains (H100 PCIe is not H100)."""
    assert find_gpu(device_name).peak_bf16_flops == peak


def test_no_entry_is_shadowed_by_an_earlier_one():
    """No name in the table contains an earlier one, so every entry can be matched."""
    for later, gpu in enumerate(GPUS):
        assert not [earlier.name for earlier in GPUS[:later] if earlier.name in gpu.name], gpu.name


def test_unknown_device_has_no_peak():
    """A device the table does not know gives None (MFU is then not reported)."""
    assert find_gpu("Some Future Accelerator") is None
