"""Accelerators the project knows: dense bf16 peak and memory, for MFU and memory plans.

One table, used by the training metrics (MFU), the benchmarks and the memory plan. A device
is matched by the first entry whose name occurs in the CUDA device name, so the more specific
names come first: "H100 PCIe" (756 TFLOP/s) before "H100" (989, the SXM part), "A10G" before
"A10". Peaks are vendor datasheet figures for dense bf16 tensor-core maths, without
sparsity; memory in GB (10^9 bytes) as sold.
"""

from typing import NamedTuple

import torch


class GPU(NamedTuple):
    name: str  # a substring of torch.cuda.get_device_name()
    peak_bf16_flops: float  # dense, FLOP/s
    memory_gb: float  # 10^9 bytes


GPUS = (
    GPU("H100 PCIe", 756e12, 80),
    GPU("H100 NVL", 835e12, 94),
    GPU("H100", 989e12, 80),  # SXM
    GPU("GH200", 989e12, 96),
    GPU("H200", 989e12, 141),
    GPU("H800", 989e12, 80),
    GPU("B200", 2250e12, 180),
    GPU("A100-PCIE-40GB", 312e12, 40),
    GPU("A100-SXM4-40GB", 312e12, 40),
    GPU("A100", 312e12, 80),
    GPU("L40S", 362e12, 48),
    GPU("L40", 181e12, 48),
    GPU("L4", 121e12, 24),
    GPU("A10G", 70e12, 24),
    GPU("A10", 125e12, 24),
)


def find_gpu(device_name: str) -> GPU | None:
    """The table's entry for a device name (most specific first), or None if unknown."""
    return next((gpu for gpu in GPUS if gpu.name in device_name), None)


def peak_flops(device: torch.device) -> float | None:
    """The device's dense bf16 peak in FLOP/s if it is a known GPU, else None (CPU, unknown cards)."""
    if device.type != "cuda":
        return None
    gpu = find_gpu(torch.cuda.get_device_name(device))
    return gpu.peak_bf16_flops if gpu else None
