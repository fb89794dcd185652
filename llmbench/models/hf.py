"""transformers + accelerate backend: hub ids, local directories and GGUF files, on CPU or CUDA."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Mapping, Sequence

from llmbench.errors import UserError
from llmbench.meters.memory import parameter_count, weights_bytes
from llmbench.meters.timing import token_clock
from llmbench.models import hf_source, quant
from llmbench.models.base import GenerateParams, Generation, LoadedModel, Note, PreparedModel


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'. Explicit CUDA without a GPU is a user error."""
    import torch

    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {device}: no CUDA device is available here")
        return "cuda:0" if device == "cuda" else device
    return device


def _torch_dtype(name: str, device: str):
    import torch

    if name == "auto":
        return "auto"
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


class HFBackend:
    """Loads with AutoModelForCausalLM; generates greedily with per-sample TTFT from a timestamping streamer."""

    name: ClassVar[str] = "hf"
    option_keys: ClassVar[tuple[str, ...]] = hf_source.OPTION_KEYS

    @classmethod
    def parse_options(cls, text: str, options: Mapping[str, str]) -> dict:
        return hf_source.parse_options(text, options)

    @classmethod
    def variant(cls, options: Mapping[str, object]) -> str | None:
        """The default row name's suffix (``[bnb-4bit]``, ``[static,compile]``...), see ModelSpec.name."""
        return quant.variant_suffix(options)

    def preflight(self, spec) -> PreparedModel:
        prepared = hf_source.preflight(spec)
        self._spec = spec  # resolve_device checks the spec's options against the device the run picks
        return prepared

    def resolve_device(self, requested: str) -> str:
        device = resolve_device(requested)
        spec = getattr(self, "_spec", None)
        if spec is not None:
            quant.check_device(spec.source, dict(spec.options), device)
        return device

    def load(self, prepared: PreparedModel, device: str, note: Note = lambda message: None) -> LoadedModel:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        spec = prepared.spec
        quant.import_torchao_quietly()
        hf_logging.disable_progress_bar()  # our own progress bar is on stderr; theirs would interleave
        hf_logging.set_verbosity_error()
        device_map, gguf_file = spec.option("device_map"), spec.option("gguf_file")
        kwargs: dict = {"revision": spec.option("revision"),
                        "trust_remote_code": spec.option("trust_remote_code", False)}
        if gguf_file:
            kwargs["gguf_file"] = gguf_file
        model_kwargs = dict(kwargs, dtype=_torch_dtype(spec.option("dtype", "auto"), device))
        method = spec.option("quant")
        if method:
            model_kwargs["quantization_config"] = quant.quantization_config(method)
            # quantized models are placed at load (bitsandbytes refuses .to() afterwards)
            device_map = device_map or device
        if spec.option("attn"):
            model_kwargs["attn_implementation"] = spec.option("attn")
        if device_map:
            model_kwargs["device_map"] = device_map
        if method:
            quant.silence_bnb_cast_warning()

        def from_pretrained(source: str):
            return AutoTokenizer.from_pretrained(source, **kwargs), AutoModelForCausalLM.from_pretrained(
                source, **model_kwargs)

        (tokenizer, model), source, prepare_s = hf_source.load_source(prepared, from_pretrained, note)
        if not device_map:
            model.to(device)
        model.eval()
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"  # decoder-only batching: pad on the left
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)
        first = next(model.parameters())
        held = weights_bytes(model)
        info = quant.runtime_info(model, spec, held)
        if spec.option("cache") == "static":
            info["static_cache_len"] = quant.static_cache(model, bool(spec.option("compile")))
        loaded = LoadedModel(
            spec=spec,
            name=spec.name,
            parameters=parameter_count(model),
            weights_bytes=held,
            dtype=str(first.dtype).removeprefix("torch."),
            device=str(first.device) if not device_map else placement(device_map, model),
            source=str(source),
            has_chat_template=bool(getattr(tokenizer, "chat_template", None)),
            handle=(model, tokenizer),
            prepare_s=prepare_s,
            info=info,
        )
        if spec.option("compile"):
            info["compile_s"] = quant.compile_model(self, loaded, note)
        return loaded

    def render(self, model: LoadedModel, messages: list[dict], plain: str) -> str:
        """The exact prompt text: the chat template when ``model.use_chat_template``, else the plain prompt."""
        _, tokenizer = model.handle
        if model.use_chat_template:
            return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return plain

    def generate_kwargs(self, model: LoadedModel, max_new_tokens: int, stop: Sequence[str]) -> dict:
        """Greedy decoding settings shared by llmbench and the bare reference loop in benchmarks."""
        _, tokenizer = model.handle
        kw = {"max_new_tokens": max_new_tokens, "do_sample": False, "pad_token_id": tokenizer.pad_token_id}
        if model.spec.option("cache") == "static":
            kw["cache_implementation"] = "static"
        if stop:
            kw["stopping_criteria"] = self._stop_criteria(model, tuple(stop))
        return kw

    def _stop_criteria(self, model: LoadedModel, stop: tuple[str, ...]):
        """Stop-string criteria built once per model and stop set: building them scans the whole vocabulary
        (0.1-0.3 s), which `stop_strings=` would repeat inside every generate call and inside the TTFT clock."""
        from transformers import StoppingCriteriaList, StopStringCriteria

        cache = model.__dict__.setdefault("_stop_cache", {})
        if stop not in cache:
            _, tokenizer = model.handle
            cache[stop] = StoppingCriteriaList([StopStringCriteria(tokenizer=tokenizer, stop_strings=list(stop))])
        return cache[stop]

    def encode(self, model: LoadedModel, prompts: Sequence[str]):
        """Tokenise prompts (left-padded); templated prompts already carry their special tokens."""
        hf_model, tokenizer = model.handle
        templated = model.use_chat_template
        enc = tokenizer(
            list(prompts), return_tensors="pt", padding=True,
            add_special_tokens=not templated or tokenizer.bos_token is None,
        )
        return enc.to(hf_model.device)

    def generate(self, model: LoadedModel, prompts: Sequence[str], params: GenerateParams,
                 sync=None) -> list[Generation]:
        """Generate for every prompt in batches; each Generation carries its batch's timings."""
        import torch

        hf_model, tokenizer = model.handle
        stop, batch_size = params.stop, params.batch_size
        kwargs = self.generate_kwargs(model, params.max_new_tokens, stop)
        eos_ids = _eos_ids(hf_model, tokenizer)
        out: list[Generation] = []
        for start in range(0, len(prompts), batch_size):
            batch = list(prompts[start:start + batch_size])
            enc = self.encode(model, batch)
            prompt_tokens = enc["attention_mask"].sum(dim=1).tolist()
            call_kwargs, stops = kwargs, None
            if len(batch) > 1 and "stopping_criteria" in kwargs:
                # rows of a batch end at different steps; a stop string's row is then padded, and the pad id
                # may be the eos id, so the step each row stopped at is recorded rather than guessed
                stops = _stop_steps(kwargs["stopping_criteria"])
                call_kwargs = dict(kwargs, stopping_criteria=_criteria_list([stops]))
            torch.manual_seed(params.seed)
            with token_clock(sync) as clock, torch.inference_mode():
                ids = hf_model.generate(**enc, streamer=clock, **call_kwargs)
            new_ids = ids[:, enc["input_ids"].shape[1]:]
            for i, (prompt, row) in enumerate(zip(batch, new_ids.tolist())):
                stopped = stops.stopped_at.get(i) if stops is not None else None
                if stopped is not None:
                    n = _count_new_tokens(row[:stopped], None, eos_ids)
                else:
                    n = _count_new_tokens(row, tokenizer.pad_token_id, eos_ids)
                text = tokenizer.decode(row[:n], skip_special_tokens=True)
                # a row that ended before its batch: its TPOT runs to its own last token, not the batch's end
                last = clock.step_s(n - 1) if len(batch) > 1 and 0 < n < clock.steps else None
                out.append(Generation(prompt, cut_at_stop(text, stop), n, clock.ttft_s, clock.e2e_s,
                                      last_token_s=last, prompt_tokens=int(prompt_tokens[i])))
        return out

    def unload(self, model: LoadedModel) -> None:
        import gc

        import torch

        model.handle = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def placement(device_map: str, hf_model) -> str:
    """Where accelerate put the model, e.g. ``device_map=auto -> cuda:0,cpu`` (a CPU or disk entry means
    offloaded layers, which dominate latency)."""
    placed = getattr(hf_model, "hf_device_map", None) or {}
    names = {f"cuda:{v}" if isinstance(v, int) else str(v) for v in placed.values()}
    if not names:
        names = {str(p.device) for p in hf_model.parameters()}
    return f"device_map={device_map} -> {','.join(sorted(names))}"


def _criteria_list(criteria: list):
    from transformers import StoppingCriteriaList

    return StoppingCriteriaList(criteria)


def _stop_steps(inner):
    """A stopping criterion that asks ``inner`` and records, per batch row, the first step it said stop."""
    from transformers import StoppingCriteria

    class StopSteps(StoppingCriteria):
        def __init__(self) -> None:
            self.steps = 0
            self.stopped_at: dict[int, int] = {}  # batch row -> new tokens when it stopped

        def __call__(self, input_ids, scores, **kwargs):
            self.steps += 1
            done = inner(input_ids, scores, **kwargs)
            for i in done.nonzero().flatten().tolist():
                self.stopped_at.setdefault(i, self.steps)
            return done

    return StopSteps()


def _eos_ids(hf_model, tokenizer) -> set[int]:
    eos = hf_model.generation_config.eos_token_id
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def _count_new_tokens(row: list[int], pad_id: int | None, eos_ids: set[int]) -> int:
    """Generated tokens up to and including the first end-of-sequence token; padding after it excluded."""
    for i, tok in enumerate(row):
        if tok in eos_ids:
            return i + 1
    n = len(row)
    # a row that finished early in a batch is padded; the pad id may equal eos (handled above)
    while n and pad_id is not None and row[n - 1] == pad_id:
        n -= 1
    return n


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """Text before the earliest stop sequence (generation stops after the token that completes it)."""
    cut = len(text)
    for s in stop:
        i = text.find(s)
        if i != -1:
            cut = min(cut, i)
    return text[:cut].strip()


def is_local(source: str) -> bool:
    return Path(source).expanduser().exists()
