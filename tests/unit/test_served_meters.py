"""Served models' energy and memory (DCGM exporters, local NVML device-wide, unavailable with a reason),
load levels and Poisson arrivals."""

from __future__ import annotations

import pytest
from fakes.fake_pynvml import FakeNVML

from llmbench.config import LoadConfig, LoadLevel
from llmbench.errors import UserError

EXPORTER = """# HELP DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION Total energy consumption since boot (in mJ).
# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter
DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{gpu="0",UUID="GPU-a",modelName="NVIDIA H200",Hostname="{host}"}} {e0}
DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{gpu="1",UUID="GPU-b",modelName="NVIDIA H200",Hostname="{host}"}} {e1}
# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).
# TYPE DCGM_FI_DEV_FB_USED gauge
DCGM_FI_DEV_FB_USED{{gpu="0",UUID="GPU-a",modelName="NVIDIA H200",Hostname="{host}"}} {m0}
DCGM_FI_DEV_FB_USED{{gpu="1",UUID="GPU-b",modelName="NVIDIA H200",Hostname="{host}"}} {m1}
# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).
# TYPE DCGM_FI_DEV_GPU_UTIL gauge
DCGM_FI_DEV_GPU_UTIL{{gpu="0",UUID="GPU-a"}} 99
"""


class Exporters:
    """Fake DCGM exporters: each read of a node returns its next scripted text."""

    def __init__(self, script: dict[str, list[dict]]) -> None:
        self.script = {url: list(texts) for url, texts in script.items()}

    def __call__(self, url: str, timeout_s: float) -> str:
        if url not in self.script:
            raise ConnectionError(f"[Errno 111] Connection refused: {url}")
        values = self.script[url].pop(0)
        return EXPORTER.format(host=url, **values)


def _window(meter):
    with meter.measure("level"):
        pass
    return meter.energy(), meter.memory()


def test_dcgm_energy_is_summed_over_gpus_and_nodes():
    pytest.importorskip("prometheus_client")
    from llmbench.meters.dcgm import DcgmTelemetry

    fetch = Exporters({
        "http://n1:9400/metrics": [dict(e0=1000, e1=2000, m0=100, m1=200), dict(e0=6000, e1=4000, m0=150, m1=200)],
        "http://n2:9400/metrics": [dict(e0=0, e1=0, m0=10, m1=10), dict(e0=3000, e1=1000, m0=10, m1=10)],
    })
    meter = DcgmTelemetry(("http://n1:9400/metrics", "http://n2:9400/metrics"), fetch=fetch)
    energy, memory = _window(meter)
    assert energy["available"] and energy["method"] == "dcgm-exporter"
    assert energy["joules"] == pytest.approx((5000 + 2000 + 3000 + 1000) / 1000)  # mJ deltas of four GPUs
    assert energy["scope"].startswith("device-wide") and "collect intervals" in energy["warning"]
    assert energy["short_window"]  # shorter than 2 x the 30 s collect interval
    assert [d["joules"] for d in energy["domains"]] == [5.0, 2.0, 3.0, 1.0]
    assert memory["server_used_bytes"] == (150 + 200 + 10 + 10) * 1024 * 1024 and memory["gpus"] == 4


def test_a_dcgm_counter_that_did_not_move_or_went_back_is_unavailable_not_zero():
    pytest.importorskip("prometheus_client")
    from llmbench.meters.dcgm import DcgmTelemetry

    same = dict(e0=10, e1=10, m0=1, m1=1)
    energy, _ = _window(DcgmTelemetry(("http://n1/m",), fetch=Exporters({"http://n1/m": [same, same]})))
    assert not energy["available"] and energy["joules"] is None and "did not move" in energy["reason"]
    back = Exporters({"http://n1/m": [dict(e0=10, e1=10, m0=1, m1=1), dict(e0=5, e1=10, m0=1, m1=1)]})
    energy, _ = _window(DcgmTelemetry(("http://n1/m",), fetch=back))
    assert not energy["available"] and "went backwards" in energy["reason"]


def test_a_dcgm_gpu_missing_at_one_edge_or_a_stale_counter_beside_moving_ones_is_unavailable():
    pytest.importorskip("prometheus_client")
    from llmbench.meters.dcgm import DcgmTelemetry

    stale = Exporters({"http://n1/m": [dict(e0=10, e1=10, m0=1, m1=1), dict(e0=900, e1=10, m0=1, m1=1)]})
    energy, _ = _window(DcgmTelemetry(("http://n1/m",), fetch=stale))
    assert not energy["available"] and "did not move while others did" in energy["reason"]
    nodes = ("http://n1/m", "http://n2/m")
    first = {"n1": dict(e0=10, e1=10, m0=1, m1=1), "n2": dict(e0=10, e1=10, m0=1, m1=1)}
    reads = iter([{nodes[0]: first["n1"], nodes[1]: first["n2"]}, {nodes[0]: dict(e0=90, e1=90, m0=1, m1=1)}])
    state = {}

    def fetch(url, timeout_s):
        if url == nodes[0]:
            state["read"] = next(reads)
        if url not in state["read"]:  # n2's GPUs are gone at the window's end
            return "# TYPE up gauge\nup 1\n"
        return EXPORTER.format(host=url, **state["read"][url])

    energy, _ = _window(DcgmTelemetry(nodes, fetch=fetch))
    assert not energy["available"] and "missing at the window's end" in energy["reason"]


def test_dcgm_reads_use_the_connect_timeout():
    from llmbench.models.served_meters import served_meter

    assert served_meter(["http://x/v1"], ("http://n/m",), timeout_s=3.5)._timeout == 3.5


def test_a_dcgm_read_failing_mid_run_is_a_reason_not_a_crash():
    pytest.importorskip("prometheus_client")
    from llmbench.meters.dcgm import DcgmTelemetry

    fetch = Exporters({"http://n1/m": [dict(e0=1, e1=1, m0=1, m1=1)]})  # the second read finds nothing scripted
    energy, memory = _window(DcgmTelemetry(("http://n1/m",), fetch=fetch))
    assert not energy["available"] and "window's end" in energy["reason"] and memory["server_used_bytes"] is None


def test_telemetry_endpoints_are_checked_before_the_run():
    pytest.importorskip("prometheus_client")
    from llmbench.meters.dcgm import check_endpoints

    with pytest.raises(UserError, match="cannot read it"):
        check_endpoints(("http://nowhere/metrics",), fetch=Exporters({}))
    with pytest.raises(UserError, match="no DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"):
        check_endpoints(("http://n/m",), fetch=lambda url, t: "# TYPE up gauge\nup 1\n")
    check_endpoints(("http://n/m",), fetch=Exporters({"http://n/m": [dict(e0=1, e1=1, m0=1, m1=1)]}))


def test_a_local_server_is_measured_device_wide_on_every_gpu():
    from llmbench.models.served_meters import served_meter

    fake = FakeNVML(n_devices=2, energy_mj=1000, used_bytes=5 * 1024**3)
    fake.nvmlDeviceGetCount = lambda: 2
    meter = served_meter(["http://127.0.0.1:8000/v1"], (), nvml=fake)
    with meter.measure("level"):
        fake.energy_mj = 4000  # both GPUs' counters moved by 3000 mJ
    energy, memory = meter.energy(), meter.memory()
    assert energy["available"] and energy["joules"] == pytest.approx(6.0) and energy["method"] == "nvml-energy-counter"
    assert "device-wide" in energy["scope"] and "other processes included" in energy["scope"]
    assert memory["server_used_bytes"] == 2 * 5 * 1024**3 and memory["gpus"] == 2
    assert meter.result()["duration_s"] == energy["duration_s"] > 0  # the row's latency.window_s


def test_the_meter_window_is_the_request_loop_only_not_the_tokenizing_after_it():
    import contextlib
    from types import SimpleNamespace

    from openai_stub import StubServer

    from llmbench.config import LoadConfig
    from llmbench.models.base import GenerateParams
    from llmbench.models.openai_http import OpenAIBackend, _Handle

    events = []

    @contextlib.contextmanager
    def window():
        events.append("open")
        yield
        events.append("closed")

    def count(text):
        events.append("count")
        return len(text)

    with StubServer() as stub:
        handle = _Handle([stub.url], "stub-model", {}, count, None, LoadConfig())
        spec = SimpleNamespace(option=lambda key, default=None: "completions" if key == "api" else default)
        model = SimpleNamespace(spec=spec, handle=handle, use_chat_template=False)
        try:
            gens, _ = OpenAIBackend().run_level(model, ["a", "b"], GenerateParams(8), window=window())
        finally:
            handle.close()
    assert all(g.error is None for g in gens)
    assert events == ["open", "closed", "count", "count"]


def test_a_remote_server_without_telemetry_has_no_energy_and_says_why():
    from llmbench.models.served_meters import served_meter

    meter = served_meter(["http://gpu-box.example:8000/v1"], ())
    energy, memory = _window(meter)
    assert not energy["available"] and "--gpu-telemetry" in energy["reason"] and energy["joules"] is None
    assert memory["server_used_bytes"] is None


def test_a_local_server_without_nvml_has_no_energy_and_says_why():
    from fakes.fake_pynvml import NVMLError_LibraryNotFound

    from llmbench.models.served_meters import served_meter

    meter = served_meter(["http://localhost:8000/v1"], (), nvml=FakeNVML(init_error=NVMLError_LibraryNotFound()))
    energy, _ = _window(meter)
    assert not energy["available"] and energy["reason"].startswith("local server, but no GPU to read")


def test_load_levels_and_their_row_suffixes():
    assert LoadConfig().levels() == [LoadLevel(1, None)] and LoadLevel(1, None).suffix == ""
    assert [lv.suffix for lv in LoadConfig(concurrency=(1, 4, 16)).levels()] == ["", "@c4", "@c16"]
    assert [lv.suffix for lv in LoadConfig(rates=(0.5, 2.0)).levels()] == ["@r0.5", "@r2"]
    assert [lv.suffix for lv in LoadConfig(concurrency=(1, 8), rates=(2.0,)).levels()] == ["@c1r2", "@c8r2"]


def test_poisson_arrivals_are_seeded_and_have_the_requested_mean_rate():
    from llmbench.models.openai_load import poisson_offsets

    a = poisson_offsets(2000, 4.0, seed=1)
    assert a == poisson_offsets(2000, 4.0, seed=1) != poisson_offsets(2000, 4.0, seed=2)
    assert a[0] == 0.0 and all(x < y for x, y in zip(a, a[1:]))
    assert 1999 / a[-1] == pytest.approx(4.0, rel=0.1)


def test_is_local():
    from llmbench.models.served_meters import is_local

    assert is_local("http://127.0.0.1:8000/v1") and is_local("http://localhost/v1") and is_local("http://[::1]:1/v1")
    assert not is_local("https://api.example.com/v1")
