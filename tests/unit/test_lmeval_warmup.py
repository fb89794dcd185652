"""The lm-eval bridge's CUDA prefill warm-up, on stand-in requests (no lm_eval, no torch)."""

from __future__ import annotations

from dataclasses import dataclass

from llmbench.lmeval.metered import _prefill_warm_up


@dataclass
class Req:  # the shape of lm_eval's Instance that the bridge touches
    arguments: tuple

    @property
    def args(self) -> tuple:
        return self.arguments


def _calls(device: str, warmup: int, per_request: bool):
    reqs = [Req(("ctx a", {"until": ["\n"], "max_gen_toks": 32})), Req(("ctx b", {"until": ["\n"]}))]
    calls = []
    _prefill_warm_up(lambda batch: calls.append([(r.args[0], r.args[1]) for r in batch]), reqs, device, warmup,
                     per_request, 256)
    return calls, reqs


def test_cuda_prefills_each_request_once_with_one_token_and_leaves_the_requests_alone():
    calls, reqs = _calls("cuda:0", 1, per_request=True)
    one = {"until": ["\n"], "max_gen_toks": 1}
    assert calls == [[("ctx a", one)], [("ctx b", one)]]
    assert reqs[0].args[1] == {"until": ["\n"], "max_gen_toks": 32} and reqs[1].args[1] == {"until": ["\n"]}


def test_batched_requests_are_prefilled_as_one_call():
    calls, _ = _calls("cuda", 1, per_request=False)
    assert [[ctx for ctx, _ in c] for c in calls] == [["ctx a", "ctx b"]]


def test_no_prefill_on_the_cpu_or_without_warm_up():
    assert _calls("cpu", 1, True)[0] == [] and _calls("cuda:0", 0, True)[0] == []


def test_real_lm_eval_instances_are_copied_not_changed():
    import pytest

    instance = pytest.importorskip("lm_eval.api.instance")
    reqs = [instance.Instance(request_type="generate_until", doc={}, arguments=("ctx", {"max_gen_toks": 9}), idx=0)]
    calls = []
    _prefill_warm_up(lambda batch: calls.extend(batch), reqs, "cuda:0", 1, True, 256)
    assert calls[0].args == ("ctx", {"max_gen_toks": 1}) and calls[0] is not reqs[0]
    assert reqs[0].args == ("ctx", {"max_gen_toks": 9})
