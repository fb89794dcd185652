"""Peak memory per window: process RSS (exact from procfs ``VmHWM`` on Linux, else sampled with psutil: a
lower bound, ``rss_method`` says which), CUDA allocator peaks and NVML device memory used. See docs/meters.md.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmbench.meters.base import PeriodicThread, WindowMeter, parse_device
from llmbench.meters.gpu import nvml_error, open_nvml_device

PROCFS = "procfs-vmhwm"
SAMPLING = "psutil-sampling"

# If VmHWM still exceeds VmRSS by this much right after a reset, the reset did not take effect.
_RESET_SLACK_BYTES = 32 * 1024 * 1024

# Resetting VmHWM is per process, so an open window on the same process would lose the peak it has seen
# so far. Every reset first folds the current VmHWM into the other open windows of that process.
_open_windows: dict[Path, list[_Window]] = {}
_open_lock = threading.Lock()


def read_status_bytes(proc_dir: Path) -> dict[str, int]:
    """``VmHWM`` and ``VmRSS`` from ``<proc_dir>/status``, in bytes (the kernel reports kB)."""
    out: dict[str, int] = {}
    with open(proc_dir / "status", encoding="ascii", errors="replace") as fh:
        for line in fh:
            if line.startswith(("VmHWM:", "VmRSS:")):
                key, _, rest = line.partition(":")
                out[key] = int(rest.split()[0]) * 1024
    return out


def reset_peak_rss(proc_dir: Path = Path("/proc/self")) -> None:
    """Reset the kernel's RSS high-water mark of a process (Linux >= 4.0). Raises OSError if not allowed."""
    with open(proc_dir / "clear_refs", "w", encoding="ascii") as fh:
        fh.write("5")


@dataclass(eq=False)  # identity semantics: windows are removed from _open_windows by identity
class _Window:
    method: str
    start_rss: int | None = None
    carried_peak: int = 0  # peak seen before a nested window reset VmHWM
    sampled_peak: int = 0
    sampler: PeriodicThread | None = None
    cuda_ok: bool = False
    nvml_start: int | None = None
    nvml_reason: str | None = None
    notes: list[str] = field(default_factory=list)


class MemoryMeter(WindowMeter):
    """Peak process RSS, CUDA allocator peaks and NVML device memory used, per window.

    ``result()`` keys: ``peak_rss_bytes``, ``rss_method`` (``procfs-vmhwm`` | ``psutil-sampling``),
    ``rss_start_bytes``, ``rss_end_bytes``, ``cuda_peak_allocated_bytes``, ``cuda_peak_reserved_bytes``,
    ``cuda_reason``, ``nvml_used_bytes`` (device-wide, max of the start and end reads), ``nvml_reason``.
    A ``None`` value always comes with its reason.
    """

    def __init__(
        self,
        device: str = "cpu",
        pid: int | None = None,
        *,
        nvml: Any = None,
        sample_period_s: float = 0.02,
        force_sampling: bool = False,
    ) -> None:
        super().__init__()
        self.device = parse_device(device)
        self.pid = os.getpid() if pid is None else int(pid)
        self._proc_dir = Path("/proc") / ("self" if pid is None else str(pid))
        self._sample_period_s = sample_period_s
        self._procfs_ok = not force_sampling and (self._proc_dir / "clear_refs").exists()
        self._procfs_note: str | None = None if self._procfs_ok else "procfs clear_refs not available"
        self._psutil_proc: Any = None

        self._torch: Any = None
        self._cuda_reason: str | None = None
        self._nvml: Any = None
        self._handle: Any = None
        self._nvml_err: type[BaseException] = Exception
        self._nvml_reason: str | None = None
        if not self.device.is_cuda:
            self._cuda_reason = f"device {self.device.text} is not a CUDA device"
            self._nvml_reason = f"device {self.device.text} is not a CUDA device"
            return
        try:
            import torch  # lazily, and only for CUDA devices

            if torch.cuda.is_available():
                self._torch = torch
            else:
                self._cuda_reason = "torch reports no CUDA device"
        except ImportError:
            self._cuda_reason = "torch not installed"
        mod, handle, reason = open_nvml_device(nvml, self.device)
        if mod is None:
            self._nvml_reason = reason
        else:
            self._nvml, self._handle, self._nvml_err = mod, handle, nvml_error(mod)

    # --- RSS -------------------------------------------------------------------------------------------
    def _rss_now(self) -> int:
        if self._psutil_proc is None:
            import psutil

            self._psutil_proc = psutil.Process(self.pid)
        return int(self._psutil_proc.memory_info().rss)

    def _start_procfs(self, win: _Window) -> bool:
        """Reset VmHWM; False (and procfs disabled for this meter) when that is impossible here."""
        try:
            before = read_status_bytes(self._proc_dir)
            if "VmHWM" not in before:
                raise OSError("no VmHWM in status")
            with _open_lock:
                for other in _open_windows.get(self._proc_dir, []):
                    other.carried_peak = max(other.carried_peak, before["VmHWM"])
                reset_peak_rss(self._proc_dir)
                after = read_status_bytes(self._proc_dir)
                if after["VmHWM"] > after["VmRSS"] + _RESET_SLACK_BYTES and after["VmHWM"] >= before["VmHWM"]:
                    raise OSError("writing 5 to clear_refs did not reset VmHWM")
                _open_windows.setdefault(self._proc_dir, []).append(win)
        except (OSError, ValueError) as exc:
            self._procfs_ok = False
            self._procfs_note = f"procfs peak RSS unavailable ({exc})"
            return False
        win.start_rss = after["VmRSS"]
        return True

    def _start_sampling(self, win: _Window) -> None:
        win.method = SAMPLING
        win.start_rss = self._rss_now()
        win.sampled_peak = win.start_rss

        def sample() -> None:
            rss = self._rss_now()
            win.sampled_peak = max(win.sampled_peak, rss)

        win.sampler = PeriodicThread(sample, self._sample_period_s, name="llmbench-rss").start()

    # --- window ----------------------------------------------------------------------------------------
    def _start(self) -> _Window:
        win = _Window(method=PROCFS)
        if self._nvml is not None:
            try:
                win.nvml_start = int(self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used)
            except self._nvml_err as exc:
                win.nvml_reason = f"NVML memory read failed: {exc}"
        if self._torch is not None:
            try:
                self._torch.cuda.reset_peak_memory_stats(self.device.text)
                win.cuda_ok = True
            except RuntimeError as exc:
                win.notes.append(f"reset_peak_memory_stats failed: {exc}")
        if not (self._procfs_ok and self._start_procfs(win)):
            self._start_sampling(win)
        return win

    def _stop(self, win: _Window) -> dict[str, Any]:
        cuda_alloc = cuda_reserved = None
        cuda_reason = self._cuda_reason
        if win.cuda_ok:
            try:
                torch = self._torch
                torch.cuda.synchronize(self.device.text)
                cuda_alloc = int(torch.cuda.max_memory_allocated(self.device.text))
                cuda_reserved = int(torch.cuda.max_memory_reserved(self.device.text))
            except RuntimeError as exc:
                cuda_reason = f"CUDA memory stats failed: {exc}"
        elif self._torch is not None:
            cuda_reason = "; ".join(win.notes) or "CUDA peak stats not reset"

        nvml_used = None
        nvml_reason = win.nvml_reason or self._nvml_reason
        if self._nvml is not None and win.nvml_start is not None:
            try:
                end = int(self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used)
                nvml_used = max(win.nvml_start, end)
            except self._nvml_err as exc:
                nvml_reason = f"NVML memory read failed: {exc}"

        if win.method == PROCFS:
            with _open_lock:
                wins = _open_windows.get(self._proc_dir, [])
                if win in wins:
                    wins.remove(win)
            status = read_status_bytes(self._proc_dir)
            peak = max(status["VmHWM"], win.carried_peak)
            end_rss = status["VmRSS"]
        else:
            assert win.sampler is not None
            win.sampler.stop()
            end_rss = self._rss_now()
            peak = max(win.sampled_peak, end_rss)
        return {
            "peak_rss_bytes": int(peak),
            "rss_method": win.method,
            "rss_start_bytes": win.start_rss,
            "rss_end_bytes": int(end_rss),
            "rss_note": None if win.method == PROCFS else self._procfs_note,
            "cuda_peak_allocated_bytes": cuda_alloc,
            "cuda_peak_reserved_bytes": cuda_reserved,
            "cuda_reason": None if cuda_alloc is not None else cuda_reason,
            "nvml_used_bytes": nvml_used,
            "nvml_reason": None if nvml_used is not None else nvml_reason,
        }


def _tensor_key(t: Any) -> Any:
    """Identity of a tensor's storage: tied weights share ``data_ptr``; meta/fake tensors fall back to id()."""
    try:
        ptr = int(t.data_ptr())
    except (AttributeError, RuntimeError, TypeError):
        ptr = 0
    if ptr == 0:  # meta tensors (and objects without storage) all report 0
        return ("id", id(t))
    return ("ptr", ptr, int(t.numel()), int(t.element_size()))


def weights_bytes(model: Any) -> int:
    """Bytes of a model's parameters and buffers (``numel * element_size``), shared storage counted once.

    Works with any object that has ``.parameters()`` and ``.buffers()`` yielding tensor-like objects.
    """
    seen: set[Any] = set()
    total = 0
    for t in list(model.parameters()) + list(model.buffers()):
        key = _tensor_key(t)
        if key in seen:
            continue
        seen.add(key)
        total += _storage_bytes(t, seen)
    return total


def _storage_bytes(t: Any, seen: set) -> int:
    """Bytes a (possibly quantized) tensor really holds: a tensor subclass (torchao's Int8Tensor...) holds its
    inner tensors, not ``numel * element_size`` of the dtype it pretends to be; bitsandbytes parameters add
    their scales (``SCB`` for 8-bit, the ``quant_state`` absmax / nested state for 4-bit)."""
    flatten = getattr(t, "__tensor_flatten__", None)
    if flatten is not None and type(t).__name__ not in ("Tensor", "Parameter"):
        try:
            names, _ = flatten()
            return sum(_storage_bytes(getattr(t, n), seen) for n in names)
        except (TypeError, ValueError, AttributeError):
            pass
    total = int(t.numel()) * int(t.element_size())
    extras = [getattr(t, "SCB", None)]
    state = getattr(t, "quant_state", None)
    while state is not None:
        extras += [getattr(state, "absmax", None), getattr(state, "code", None), getattr(state, "offset", None)]
        state = getattr(state, "state2", None)
    for extra in extras:
        if extra is not None and hasattr(extra, "element_size"):
            key = _tensor_key(extra)
            if key not in seen:
                seen.add(key)
                total += int(extra.numel()) * int(extra.element_size())
    return total


def parameter_count(model: Any) -> int:
    """Exact number of unique parameters; tied weights (same storage) are counted once."""
    seen: set[Any] = set()
    total = 0
    for p in model.parameters():
        key = _tensor_key(p)
        if key in seen:
            continue
        seen.add(key)
        # bitsandbytes 4-bit packs two weights per byte: its quant_state keeps the logical shape
        shape = getattr(getattr(p, "quant_state", None), "shape", None)
        if shape is not None:
            n = 1
            for d in shape:
                n *= int(d)
            total += n
        else:
            total += int(p.numel())
    return total
