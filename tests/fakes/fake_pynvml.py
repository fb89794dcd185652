"""A controllable stand-in for the ``pynvml`` module (nvidia-ml-py), for tests without a GPU.

``FakeNVML()`` quacks like the module: the meters call ``nvml.nvmlInit()``, ``nvml.nvmlDeviceGet...`` and
catch ``nvml.NVMLError``. Tests change the readings between calls (``fake.energy_mj = 6000``) or make a
call unsupported / failing, and inspect ``fake.calls`` to see what was read.
"""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

NVML_SUCCESS = 0
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_UNKNOWN = 999
NVML_ERROR_LIBRARY_NOT_FOUND = 12

_MESSAGES = {
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    NVML_ERROR_UNKNOWN: "Unknown Error",
}


class NVMLError(Exception):
    """Like pynvml.NVMLError: carries ``value`` (the NVML return code); str() is NVML's message."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return _MESSAGES.get(self.value, f"NVML Error with code {self.value}")


class NVMLError_NotSupported(NVMLError):
    def __init__(self, value: int = NVML_ERROR_NOT_SUPPORTED) -> None:
        super().__init__(value)


class NVMLError_LibraryNotFound(NVMLError):
    def __init__(self, value: int = NVML_ERROR_LIBRARY_NOT_FOUND) -> None:
        super().__init__(value)


class NVMLError_Unknown(NVMLError):
    def __init__(self, value: int = NVML_ERROR_UNKNOWN) -> None:
        super().__init__(value)


class FakeNVML:
    """One fake GPU (or ``n_devices``) whose readings the test sets directly.

    energy_mj     value of nvmlDeviceGetTotalEnergyConsumption (mJ); a callable is called each read
    power_mw      value of nvmlDeviceGetPowerUsage (mW); a callable is called each read
    used_bytes / total_bytes   nvmlDeviceGetMemoryInfo
    energy_supported / power_supported   False -> those calls raise NVMLError_NotSupported
    init_error    an exception nvmlInit raises (e.g. NVMLError_LibraryNotFound())
    fail_energy_after   raise NVMLError_Unknown on every energy read after this many reads
    """

    NVMLError = NVMLError
    NVMLError_NotSupported = NVMLError_NotSupported
    NVMLError_LibraryNotFound = NVMLError_LibraryNotFound
    NVMLError_Unknown = NVMLError_Unknown
    NVML_ERROR_NOT_SUPPORTED = NVML_ERROR_NOT_SUPPORTED

    def __init__(
        self,
        *,
        energy_mj: Any = 0,
        power_mw: Any = 0,
        used_bytes: int = 0,
        total_bytes: int = 80 * 1024**3,
        energy_supported: bool = True,
        power_supported: bool = True,
        init_error: BaseException | None = None,
        n_devices: int = 1,
        name: str | bytes = "Fake GPU H100",
        driver: str = "550.54.15",
        cuda_driver_version: int = 12040,
        fail_energy_after: int | None = None,
    ) -> None:
        self.energy_mj = energy_mj
        self.power_mw = power_mw
        self.used_bytes = used_bytes
        self.total_bytes = total_bytes
        self.energy_supported = energy_supported
        self.power_supported = power_supported
        self.init_error = init_error
        self.n_devices = n_devices
        self.name = name
        self.driver = driver
        self.cuda_driver_version = cuda_driver_version
        self.fail_energy_after = fail_energy_after
        self.calls: Counter[str] = Counter()
        self.handles_requested: list[Any] = []

    # --- library ----------------------------------------------------------------------------------------
    def nvmlInit(self) -> None:
        self.calls["nvmlInit"] += 1
        if self.init_error is not None:
            raise self.init_error

    def nvmlShutdown(self) -> None:
        self.calls["nvmlShutdown"] += 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.driver

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return self.cuda_driver_version

    # --- handles ----------------------------------------------------------------------------------------
    def nvmlDeviceGetHandleByIndex(self, index: int) -> tuple[str, int]:
        self.handles_requested.append(("index", index))
        if not 0 <= index < self.n_devices:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return ("handle", index)

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> tuple[str, int]:
        self.handles_requested.append(("uuid", uuid))
        for i in range(self.n_devices):
            if uuid == self._uuid(i):
                return ("handle", i)
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)

    @staticmethod
    def _uuid(index: int) -> str:
        return f"GPU-00000000-0000-0000-0000-00000000000{index}"

    def nvmlDeviceGetUUID(self, handle: tuple[str, int]) -> str:
        return self._uuid(handle[1])

    def nvmlDeviceGetName(self, handle: tuple[str, int]) -> str | bytes:
        return self.name

    # --- readings ---------------------------------------------------------------------------------------
    @staticmethod
    def _value(v: Any) -> Any:
        return v() if callable(v) else v

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any) -> int:
        self.calls["energy"] += 1
        if not self.energy_supported:
            raise NVMLError_NotSupported()
        if self.fail_energy_after is not None and self.calls["energy"] > self.fail_energy_after:
            raise NVMLError_Unknown()
        return int(self._value(self.energy_mj))

    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int:
        self.calls["power"] += 1
        if not self.power_supported:
            raise NVMLError_NotSupported()
        return int(self._value(self.power_mw))

    def nvmlDeviceGetMemoryInfo(self, handle: Any) -> SimpleNamespace:
        self.calls["memory"] += 1
        used = int(self._value(self.used_bytes))
        return SimpleNamespace(total=self.total_bytes, used=used, free=self.total_bytes - used)
