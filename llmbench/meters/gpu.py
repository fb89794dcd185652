"""NVML and CUDA helpers shared by the meters: loading NVML, finding a device's handle, device info, sync.

Nothing here imports torch unless the device is a CUDA device, and nothing raises because NVML or a GPU
is missing: callers get ``None`` plus a reason string.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from llmbench.meters.base import Device, parse_device


def load_nvml(nvml: Any = None) -> tuple[Any, str | None]:
    """Import (unless given) and initialise NVML. Returns ``(module, None)`` or ``(None, reason)``.

    ``nvmlInit`` is reference counted by NVML, so every meter may call it; we never shut NVML down (the
    process exit does), which keeps handles valid for meters that outlive one another.
    """
    if nvml is None:
        try:
            import pynvml as nvml  # nvidia-ml-py
        except ImportError as exc:
            return None, f"NVML unavailable: pynvml not installed ({exc})"
    try:
        nvml.nvmlInit()
    except nvml_error(nvml) as exc:  # no sensor, e.g. NVMLError_LibraryNotFound
        return None, f"NVML unavailable: {exc}"
    return nvml, None


def nvml_error(nvml: Any) -> type[BaseException]:
    """The exception class NVML calls raise (``pynvml.NVMLError``)."""
    return getattr(nvml, "NVMLError", Exception)


def is_not_supported(nvml: Any, exc: BaseException) -> bool:
    """True when ``exc`` is NVML's NOT_SUPPORTED error (the GPU lacks that counter)."""
    cls = getattr(nvml, "NVMLError_NotSupported", None)
    if isinstance(cls, type) and isinstance(exc, cls):
        return True
    return getattr(exc, "value", None) == getattr(nvml, "NVML_ERROR_NOT_SUPPORTED", 3)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _torch_uuid(index: int) -> str | None:
    """The CUDA device's UUID from torch, only when torch is already imported and CUDA initialised."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if not torch.cuda.is_initialized():
            return None
        uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    except (RuntimeError, AssertionError, AttributeError):
        return None
    if uuid is None:
        return None
    uuid = str(uuid)
    return uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}"


def nvml_handle(nvml: Any, device: str | Device) -> Any:
    """NVML handle for a CUDA device index, as CUDA numbers devices.

    CUDA and NVML number GPUs differently when ``CUDA_VISIBLE_DEVICES`` is set (and NVML always uses PCI
    order). In order of preference: the UUID torch reports (when CUDA is already initialised), the
    ``CUDA_VISIBLE_DEVICES`` entry for that index (an index or a UUID), and finally the index itself.
    Raises NVML's error when no handle can be obtained.
    """
    dev = parse_device(device) if isinstance(device, str) else device
    index = dev.cuda_index
    uuid = _torch_uuid(index)
    if uuid is not None:
        with suppress(nvml_error(nvml)):  # else fall through to the environment / index
            return nvml.nvmlDeviceGetHandleByUUID(uuid)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        entries = [e.strip() for e in visible.split(",") if e.strip()]
        if index < len(entries):
            entry = entries[index]
            if entry.isdigit():
                return nvml.nvmlDeviceGetHandleByIndex(int(entry))
            if entry.startswith(("GPU-", "MIG-")):
                return nvml.nvmlDeviceGetHandleByUUID(entry)
    return nvml.nvmlDeviceGetHandleByIndex(index)


def open_nvml_device(nvml: Any, device: Device) -> tuple[Any, Any, str | None]:
    """NVML loaded and the handle of ``device``: ``(module, handle, None)`` or ``(None, None, reason)``."""
    mod, reason = load_nvml(nvml)
    if mod is None:
        return None, None, reason
    try:
        return mod, nvml_handle(mod, device), None
    except nvml_error(mod) as exc:
        return None, None, f"NVML handle for {device.text} failed: {exc}"


def _cuda_version_text(v: int) -> str:
    return f"{v // 1000}.{(v % 1000) // 10}"


def gpu_info(device: str, nvml: Any = None) -> dict[str, Any] | None:
    """Name, driver, CUDA versions and memory of a CUDA device; ``None`` for non-CUDA devices.

    Keys: ``index``, ``name``, ``uuid``, ``driver`` (NVIDIA driver version), ``cuda`` (the CUDA runtime torch
    was built with, else the driver's CUDA version), ``cuda_driver``, ``cuda_runtime``, ``memory_total_bytes``,
    ``source`` (``nvml``, ``torch`` or ``None``) and ``reason`` (why fields are missing, else ``None``).
    """
    dev = parse_device(device)
    if not dev.is_cuda:
        return None
    info: dict[str, Any] = {
        "index": dev.cuda_index,
        "name": None,
        "uuid": None,
        "driver": None,
        "cuda": None,
        "cuda_driver": None,
        "cuda_runtime": None,
        "memory_total_bytes": None,
        "source": None,
        "reason": None,
    }
    reasons: list[str] = []
    mod, reason = load_nvml(nvml)
    if mod is None:
        reasons.append(reason or "NVML unavailable")
    else:
        try:
            handle = nvml_handle(mod, dev)
            info["name"] = _text(mod.nvmlDeviceGetName(handle))
            info["memory_total_bytes"] = int(mod.nvmlDeviceGetMemoryInfo(handle).total)
            info["driver"] = _text(mod.nvmlSystemGetDriverVersion())
            info["source"] = "nvml"
            with suppress(nvml_error(mod)):
                info["uuid"] = _text(mod.nvmlDeviceGetUUID(handle))
            with suppress(nvml_error(mod)):
                info["cuda_driver"] = _cuda_version_text(int(mod.nvmlSystemGetCudaDriverVersion()))
        except nvml_error(mod) as exc:
            reasons.append(f"NVML query failed: {exc}")
    try:
        import torch  # only reached for CUDA devices

        info["cuda_runtime"] = torch.version.cuda
        if info["source"] is None and torch.cuda.is_available():
            props = torch.cuda.get_device_properties(dev.cuda_index)
            info["name"] = props.name
            info["memory_total_bytes"] = int(props.total_memory)
            info["source"] = "torch"
        elif info["source"] is None:
            reasons.append("torch reports no CUDA device")
    except ImportError:
        reasons.append("torch not installed")
    except (RuntimeError, AssertionError) as exc:
        reasons.append(f"torch CUDA query failed: {exc}")
    info["cuda"] = info["cuda_runtime"] or info["cuda_driver"]
    info["reason"] = "; ".join(reasons) or None
    return info


def _noop() -> None:
    return None


def cuda_sync(device: str) -> Callable[[], None]:
    """A callable that waits for queued GPU work on ``device``; a no-op for non-CUDA devices.

    Meters call it before reading a clock or counter so asynchronous kernels are charged to the right
    window. If torch or CUDA is unavailable the no-op is returned (there is nothing to wait for).
    """
    dev = parse_device(device)
    if not dev.is_cuda:
        return _noop
    try:
        import torch
    except ImportError:
        return _noop
    if not torch.cuda.is_available():
        return _noop
    target = torch.device(dev.text)

    def sync() -> None:
        torch.cuda.synchronize(target)

    return sync
