"""The roofline's peak-bandwidth probe on this machine: its figure and how long it takes (target: < 2 s on the
CPU). Run by `make bench`."""

from __future__ import annotations

import time


def main() -> None:
    from llmbench.meters.bandwidth import peak_bandwidth

    device = "cpu"
    try:
        import torch

        if torch.cuda.is_available():
            device = "cuda:0"
    except ImportError:
        pass
    t0 = time.perf_counter()
    peak = peak_bandwidth(device)
    wall = time.perf_counter() - t0
    if not peak["available"]:
        print(f"bandwidth probe ({device}): unavailable: {peak['reason']}")
        return
    print(f"bandwidth probe ({device}): {peak['bytes_per_s'] / 1e9:.1f} GB/s by {peak['method']}, "
          f"best of {peak['repeats']} ({peak['bytes_moved'] / 2**20:.0f} MiB moved each), {wall:.2f} s in all"
          f"{'' if wall < 2 or device != 'cpu' else '  (over the 2 s target)'}")


if __name__ == "__main__":
    main()
