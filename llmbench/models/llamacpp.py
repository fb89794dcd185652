"""Native GGUF runtime through llama-cpp-python (``backend=llamacpp``): a GGUF file run as it is stored, its
own quantization kept, next to the same file dequantised by transformers.

Models: an embedded alias (its packaged GGUF file, loaded directly: ``smollm2-135m,backend=llamacpp``), a
``.gguf`` file, or a directory with ``gguf_file=NAME``. Generation streams token by token through
``Llama.generate``, so TTFT and TPOT are read per token as for the other backends, and the token count is
the runtime's own (never a count of text chunks). Install: ``CMAKE_ARGS=-DGGML_NATIVE=OFF pip install
'llmbench[llamacpp]'`` (it builds llama.cpp from source; GGML_NATIVE=OFF gives a build that runs on any CPU
of the architecture rather than only the build machine's).
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path
from typing import ClassVar, Mapping, Sequence

from llmbench.errors import UserError
from llmbench.models.base import GenerateParams, Generation, LoadedModel, Note, PreparedModel

INSTALL_HINT = "CMAKE_ARGS=-DGGML_NATIVE=OFF pip install 'llmbench[llamacpp]' (builds llama.cpp from source)"
OPTION_KEYS = ("gguf_file", "n_ctx", "n_threads", "n_gpu_layers")
DEFAULT_N_CTX = 2048
KV_CACHE_BYTES = 2  # llama.cpp's default KV cache type is f16


def _int(text: str, key: str, value: str, low: int) -> int:
    try:
        n = int(value)
    except ValueError:
        n = low - 1
    if n < low:
        raise UserError(f"model spec {text!r}: {key} must be an integer >= {low}, not {value!r}")
    return n


def gguf_facts(path: Path) -> dict:
    """What the GGUF file says about itself, read with the ``gguf`` package (memory-mapped, no weights
    loaded): its file type (e.g. Q4_1), tensor bytes and elements, and the shapes the KV cache depends on."""
    import gguf

    reader = gguf.GGUFReader(str(path))

    def field(name: str):
        f = reader.fields.get(name)
        if f is None or not f.data:
            return None
        value = f.parts[f.data[0]]
        if f.types and f.types[0] == gguf.GGUFValueType.STRING:
            return bytes(value).decode("utf-8", "replace")
        return value.tolist()[0] if hasattr(value, "tolist") else value

    arch = field("general.architecture")
    file_type = field("general.file_type")
    try:
        type_name = gguf.LlamaFileType(file_type).name.removeprefix("MOSTLY_") if file_type is not None else None
    except ValueError:
        type_name = f"file_type {file_type}"
    tensor_types: dict[str, int] = {}
    for t in reader.tensors:
        name = t.tensor_type.name
        tensor_types[name] = tensor_types.get(name, 0) + 1
    heads = field(f"{arch}.attention.head_count")
    embed = field(f"{arch}.embedding_length")
    return {
        "architecture": arch,
        "file_type": type_name,
        "tensor_types": tensor_types,
        "tensor_bytes": int(sum(int(t.n_bytes) for t in reader.tensors)),
        "parameters": int(sum(int(t.n_elements) for t in reader.tensors)),
        "layers": field(f"{arch}.block_count"),
        "kv_heads": field(f"{arch}.attention.head_count_kv") or heads,
        "key_length": field(f"{arch}.attention.key_length") or (embed // heads if embed and heads else None),
        "value_length": field(f"{arch}.attention.value_length") or (embed // heads if embed and heads else None),
        "chat_template": field("tokenizer.chat_template"),
    }


def _library_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError:
        return None


class LlamaCppBackend:
    """A GGUF model in process with llama.cpp, greedy, one prompt at a time (the latency setting)."""

    name: ClassVar[str] = "llamacpp"
    option_keys: ClassVar[tuple[str, ...]] = OPTION_KEYS

    @classmethod
    def parse_options(cls, text: str, options: Mapping[str, str]) -> dict:
        out: dict = {}
        for key, value in options.items():
            if key == "n_ctx":
                out[key] = _int(text, key, value, 16)
            elif key == "n_threads":
                out[key] = _int(text, key, value, 1)
            elif key == "n_gpu_layers":
                out[key] = _int(text, key, value, -1)
            else:
                out[key] = value
        return out

    @classmethod
    def variant(cls, options: Mapping[str, object]) -> str | None:
        """Rows of the native runtime sort next to the model's other rows: ``smollm2-135m[llamacpp]``."""
        return "[llamacpp]"

    def configure(self, config) -> None:
        """Refuse batch sizes above 1 before anything runs: llama-cpp-python's API decodes one sequence at a
        time, so answers "of a batch" would not share their timings and batch throughput would be made up."""
        levels = config.generation.batch_levels
        if max(levels) > 1:
            raise UserError(
                f"backend llamacpp decodes one prompt at a time: --batch-size {','.join(map(str, levels))} would "
                "not be a batch for it; run llamacpp models at --batch-size 1")

    def preflight(self, spec) -> PreparedModel:
        from llmbench.models.embedded import EMBEDDED, gguf_path

        if importlib.util.find_spec("llama_cpp") is None:
            raise UserError(f"model {spec.source}: backend=llamacpp needs llama-cpp-python, which is not "
                            f"installed ({INSTALL_HINT})")
        self._spec = spec
        gguf_file = spec.option("gguf_file")
        if spec.source in EMBEDDED:
            if gguf_file:
                raise UserError(f"model {spec.source}: gguf_file= does not apply to an embedded alias")
            return PreparedModel(spec, spec.source, facts={"embedded": True, "gguf": gguf_path(spec.source)})
        path = Path(spec.source).expanduser()
        if path.is_dir():
            if not gguf_file:
                raise UserError(f"model {spec.source}: a directory needs gguf_file=NAME for backend=llamacpp")
            path = path / gguf_file
        if path.suffix != ".gguf" or not path.is_file():
            raise UserError(f"model {spec.source}: backend=llamacpp runs a GGUF file (an embedded alias, a .gguf "
                            f"file or a directory with gguf_file=); {path} is not one")
        return PreparedModel(spec, str(path), facts={"gguf": path})

    def resolve_device(self, requested: str) -> str:
        spec = getattr(self, "_spec", None)
        layers = spec.option("n_gpu_layers", 0) if spec is not None else 0
        if requested.startswith("cuda") and not layers:
            raise UserError("backend=llamacpp runs on the CPU unless n_gpu_layers= is given (a CUDA build of "
                            "llama-cpp-python offloads that many layers)")
        if layers and requested != "cpu":
            return "cuda:0" if requested in ("auto", "cuda") else requested
        return "cpu"

    def load(self, prepared: PreparedModel, device: str, note: Note = lambda message: None) -> LoadedModel:
        from llama_cpp import Llama

        spec = prepared.spec
        t0 = time.perf_counter()
        path = Path(prepared.facts["gguf"])  # Gemma's packaged file is assembled from its chunks once
        facts = gguf_facts(path)
        prepare_s = time.perf_counter() - t0
        n_ctx = spec.option("n_ctx", DEFAULT_N_CTX)
        threads = spec.option("n_threads") or os.cpu_count()
        llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_gpu_layers=spec.option("n_gpu_layers", 0),
                    verbose=False, seed=0)
        kv = None
        if facts["layers"] and facts["kv_heads"] and facts["key_length"] and facts["value_length"]:
            kv = int(facts["layers"]) * int(facts["kv_heads"]) * (
                int(facts["key_length"]) + int(facts["value_length"])) * KV_CACHE_BYTES
        info = {
            "quantization": {
                "method": "gguf", "file_type": facts["file_type"], "tensor_types": facts["tensor_types"],
                "library": "llama-cpp-python", "library_version": _library_version(),
                "via": "llama.cpp native kernels (weights kept as stored in the file)",
                "weights_bytes": facts["tensor_bytes"],
            },
            "gguf_file": str(path),
            "n_ctx": n_ctx, "n_threads": threads, "n_gpu_layers": spec.option("n_gpu_layers", 0),
            "kv_cache_dtype": "f16",
            "kv_bytes_per_context_token": kv,
        }
        return LoadedModel(
            spec=spec, name=spec.name, parameters=facts["parameters"], weights_bytes=facts["tensor_bytes"],
            dtype=facts["file_type"] or "gguf", device=device, source=str(path),
            has_chat_template=bool(facts["chat_template"]), handle=(llm, facts), prepare_s=prepare_s, info=info,
        )

    def render(self, model: LoadedModel, messages: list[dict], plain: str) -> str:
        """The GGUF's own chat template (rendered with jinja2, as llama-cpp-python does) or the plain prompt."""
        if not model.use_chat_template:
            return plain
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llm, facts = model.handle
        eos = llm.detokenize([llm.token_eos()], special=True).decode("utf-8", "replace")
        bos = llm.detokenize([llm.token_bos()], special=True).decode("utf-8", "replace")
        formatter = Jinja2ChatFormatter(template=facts["chat_template"], eos_token=eos, bos_token=bos)
        return formatter(messages=messages).prompt

    def generate(self, model: LoadedModel, prompts: Sequence[str], params: GenerateParams,
                 sync=None) -> list[Generation]:
        """One prompt at a time (llama-cpp-python's high-level API decodes one sequence), greedy; each token
        timestamped as it is sampled."""
        from llmbench.models.hf import cut_at_stop

        llm, _ = model.handle
        eos = llm.token_eos()
        out = []
        for prompt in prompts:
            tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=not model.use_chat_template, special=True)
            llm.reset()  # no prompt-prefix reuse between prompts: every TTFT includes its whole prefill
            # the clock starts where the HF backend's does: the prompt tokenized, generation about to begin
            t0 = time.perf_counter()
            new: list[int] = []
            first = last = None
            pieces = b""  # each new token's bytes, appended: the stop check never re-detokenizes the answer
            for tok in llm.generate(tokens, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0,
                                    reset=True):
                now = time.perf_counter()
                first = first if first is not None else now - t0
                last = now - t0
                new.append(tok)
                if tok == eos or len(new) >= params.max_new_tokens:
                    break
                if params.stop:
                    pieces += llm.detokenize([tok])
                    if any(s in pieces.decode("utf-8", "replace") for s in params.stop):
                        break
            e2e = time.perf_counter() - t0
            body = [t for t in new if t != eos]
            text = llm.detokenize(body).decode("utf-8", "replace")
            out.append(Generation(prompt, cut_at_stop(text, params.stop), len(new), first, e2e,
                                  last_token_s=last, prompt_tokens=len(tokens)))
        return out

    def unload(self, model: LoadedModel) -> None:
        if model.handle is not None:
            llm, _ = model.handle
            close = getattr(llm, "close", None)
            if close is not None:
                close()
        model.handle = None
