"""Backend ``openai``: a model behind an OpenAI-compatible HTTP API (vLLM, TGI, SGLang, llama.cpp's server,
``transformers serve``...), streamed and timestamped per chunk. An ``http(s)://`` id selects it:

    http://127.0.0.1:8000/v1,model=NAME,api=chat|completions,api_key_env=VAR,name=LABEL,parameters=N,
    tokenizer=ID_OR_DIR,urls=URL1;URL2

``model`` defaults to the only model ``/models`` lists; ``api`` to ``chat`` when the run uses chat templates
(the server applies its own), else ``completions`` with the plain prompt (with ``api=completions`` and a
``tokenizer`` that has a chat template, the template is applied here and the text sent). The API key is
read from the environment variable ``api_key_env`` names and never enters a record. ``parameters`` is
what the user declares, else counted from a local ``tokenizer`` directory's weights or config, else unknown
(None), never guessed. ``urls`` adds replicas of the same model; requests go round-robin over them.

Streaming, timing and load levels: openai_stream, served_timing, openai_load; energy: served_meters.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence
from urllib.parse import urlsplit

from llmbench.config import LoadConfig, LoadLevel, unknown_option, url_credentials
from llmbench.errors import UserError
from llmbench.models.base import GenerateParams, Generation, LoadedModel, Note, PreparedModel
from llmbench.registry import did_you_mean

OPTION_KEYS = ("model", "api", "api_key_env", "parameters", "tokenizer", "urls")
APIS = ("chat", "completions")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_COUNT = re.compile(r"^(\d+(?:\.\d+)?)([kKmMbBtT]?)$")
_SCALE = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "t": 10**12}


def parse_parameters(text: str, value: str) -> int:
    """``134515008``, ``135M``, ``7B``, ``1.5e9`` -> an integer count; UserError otherwise."""
    m = _COUNT.match(value.strip())
    try:
        count = float(m.group(1)) * _SCALE[m.group(2).lower()] if m else float(value)
    except ValueError:
        count = -1
    if not count >= 1 or count != count:
        raise UserError(f"model spec {text!r}: parameters must be a count such as 134515008, 135M or 7B, "
                        f"not {value!r}")
    return int(round(count))


def check_url(text: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"model spec {text.split('?')[0]!r}: {url.split('?')[0]!r} is not an http(s):// URL")
    found = url_credentials(url)
    if found:
        raise UserError(f"model spec: put no credentials in the URL ({found}; records keep it); give the key in "
                        "an environment variable with api_key_env=VAR")
    return url.rstrip("/")


def redact(text: str | None, secret: str | None) -> str | None:
    """``text`` with every occurrence of ``secret`` (the API key) replaced by ``***``."""
    if not text or not secret:
        return text
    return text.replace(secret, "***")


def api_key(spec) -> str | None:
    """The key from the environment variable ``api_key_env`` names; UserError when it is not set."""
    var = spec.option("api_key_env")
    if var is None:
        return None
    key = (os.environ.get(var) or "").strip()
    if not key:
        raise UserError(f"model {spec.name}: api_key_env={var} but the environment variable {var} is not set "
                        "(or empty)")
    if not all(33 <= ord(c) <= 126 for c in key):  # never printed: it is a secret
        raise UserError(f"model {spec.name}: the API key in {var} has characters that are not printable ASCII "
                        "(spaces, a newline, non-ASCII): check the variable's value")
    return key


class _Handle:
    """What a loaded served model holds: one event loop and one AsyncClient for every level."""

    def __init__(self, replicas: list[str], model: str, headers: dict, count: Callable[[str], int] | None,
                 tokenizer: Any, load: LoadConfig) -> None:
        import asyncio

        import httpx

        from llmbench.models.openai_stream import stamping_transport

        self.replicas, self.model, self.count, self.tokenizer = replicas, model, count, tokenizer
        self.loop = asyncio.new_event_loop()
        timeout = httpx.Timeout(load.request_timeout_s, connect=load.connect_timeout_s, pool=None)
        # no connection cap here: the load level's own concurrency bounds what is in flight
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=512)
        self.client = httpx.AsyncClient(headers=headers, timeout=timeout,
                                        transport=stamping_transport(limits=limits))
        self.request_timeout_s = load.request_timeout_s

    def close(self) -> None:
        import asyncio

        try:
            # requests still in flight (Ctrl-C in the middle of a level) are cancelled, not waited for
            pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.client.aclose())
            # streams left at [DONE] leave httpx's inner byte iterators to be finalised on this loop
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()


class OpenAIBackend:
    """Served models over an OpenAI-compatible API; see the module docstring."""

    name: ClassVar[str] = "openai"
    option_keys: ClassVar[tuple[str, ...]] = OPTION_KEYS

    def __init__(self) -> None:
        self.load_config = LoadConfig()
        self.chat_template_default = True
        self._telemetry_checked = False
        self.fetch_models: Callable[[str, dict, float], tuple[int, Any]] = _get_models

    def configure(self, config) -> None:
        """The run's load settings (levels, timeouts, telemetry), given by the runner before preflight."""
        self.load_config = config.load
        self.chat_template_default = config.generation.use_chat_template

    @classmethod
    def parse_options(cls, text: str, options: Mapping[str, str]) -> dict:
        check_url(text, text.split(",")[0].strip())  # first: later messages quote the spec
        out: dict[str, object] = {}
        for key, value in options.items():
            if key not in OPTION_KEYS:
                raise unknown_option(text, key, OPTION_KEYS)
            if key == "api":
                if value not in APIS:
                    raise UserError(f"model spec {text!r}: api must be chat or completions, not {value!r}")
                out[key] = value
            elif key == "api_key_env":
                if not _ENV_NAME.match(value):
                    raise UserError(f"model spec {text!r}: api_key_env takes the NAME of an environment variable "
                                    "(the key itself never goes on the command line)")
                out[key] = value
            elif key == "parameters":
                out[key] = parse_parameters(text, value)
            elif key == "urls":
                out[key] = tuple(check_url(text, u.strip()) for u in value.split(";") if u.strip())
            else:
                out[key] = value
        return out

    # --- preflight ----------------------------------------------------------------------------------
    def preflight(self, spec) -> PreparedModel:
        """Reach every replica's ``/models``, check the model name and the key, before anything is measured."""
        key = api_key(spec)
        what = f"model {spec.name}"
        if spec.option("api") == "chat" and not self._uses_chat_template(spec):
            raise UserError(f"{what}: api=chat always applies the server's chat template; drop --no-chat-template "
                            "/ chat_template=false, or use api=completions for plain prompts")
        replicas = list(dict.fromkeys([spec.source.rstrip("/"), *spec.option("urls", ())]))
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        wanted = spec.option("model")
        served: dict[str, dict] = {}
        for url in replicas:
            ids = self._models(what, url, headers)
            if wanted is None:
                if len(ids) != 1:
                    raise UserError(f"{what}: {url} serves {len(ids)} models ({', '.join(list(ids)[:5]) or 'none'}); "
                                    "name one with model=NAME")
                wanted = next(iter(ids))
            elif not ids:  # a server that lists nothing yet loads what is asked for (transformers serve 5.17
                ids = {wanted: {"id": wanted, "listed": False}}  # on a local folder): the first request checks
            elif wanted not in ids:
                raise UserError(f"{what}: {url} does not serve model {wanted!r} (it serves: "
                                f"{', '.join(list(ids)[:5])}){did_you_mean(wanted, ids)}")
            served.setdefault(wanted, ids[wanted])
        tokenizer = spec.option("tokenizer")
        if tokenizer and tokenizer.startswith(("/", ".", "~")) and not Path(tokenizer).expanduser().exists():
            raise UserError(f"{what}: tokenizer={tokenizer}: no such directory")
        if self.load_config.gpu_telemetry and not self._telemetry_checked:
            from llmbench.meters.dcgm import check_endpoints

            check_endpoints(self.load_config.gpu_telemetry, timeout_s=self.load_config.connect_timeout_s)
            self._telemetry_checked = True
        entry = {k: v for k, v in served[wanted].items() if k in ("id", "owned_by", "max_model_len", "root", "listed")}
        return PreparedModel(spec, spec.source, facts={"replicas": replicas, "model": wanted, "server": entry})

    def _uses_chat_template(self, spec) -> bool:
        return spec.chat_template if spec.chat_template is not None else self.chat_template_default

    def _models(self, what: str, url: str, headers: dict) -> dict[str, dict]:
        try:
            status, body = self.fetch_models(url, headers, self.load_config.connect_timeout_s)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - refused, DNS, TLS, timeout: the user's server to fix
            detail = " ".join(redact(str(exc), _bearer(headers)).split())[:200] or type(exc).__name__
            raise UserError(f"{what}: cannot reach {url} ({detail}); is the server running?") from None
        if status in (401, 403):
            raise UserError(f"{what}: {url} refused the request (HTTP {status}): give its API key with "
                            "api_key_env=VAR, the name of an environment variable holding it")
        if status == 404:
            hint = "" if urlsplit(url).path.rstrip("/").endswith("/v1") else f"; did you mean {url}/v1?"
            raise UserError(f"{what}: {url}/models not found (HTTP 404): give the OpenAI-compatible base URL{hint}")
        if status != 200:
            raise UserError(f"{what}: {url}/models answered HTTP {status}")
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise UserError(f"{what}: {url}/models is not an OpenAI model list")
        return {str(m["id"]): m for m in data if isinstance(m, dict) and "id" in m}

    def resolve_device(self, requested: str) -> str:
        return "server"  # --device is for in-process models; the server placed its own model

    # --- load ----------------------------------------------------------------------------------------
    def load(self, prepared: PreparedModel, device: str, note: Note = lambda message: None) -> LoadedModel:
        spec, facts = prepared.spec, prepared.facts
        key = api_key(spec)
        tokenizer_id = spec.option("tokenizer")
        tokenizer, count = None, None
        if tokenizer_id:
            tokenizer = _load_tokenizer(tokenizer_id)
            count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
        parameters, source = spec.option("parameters"), "declared"
        if parameters is None and tokenizer_id:
            parameters, source = count_parameters(tokenizer_id, note), "counted from " + tokenizer_id
        if parameters is None:
            source = None
        if spec.option("api") == "completions":
            has_template = bool(getattr(tokenizer, "chat_template", None))
        else:
            has_template = True  # chat, or chat when the run uses templates: the server applies its own
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        handle = _Handle(facts["replicas"], facts["model"], headers, count, tokenizer, self.load_config)
        info = {"backend": "openai", "server_model": facts["model"], "api": spec.option("api", "auto"),
                "replicas": facts["replicas"], "server": facts.get("server") or {}, "tokenizer": tokenizer_id,
                "parameters_source": source}
        return LoadedModel(spec=spec, name=spec.name, parameters=parameters, weights_bytes=None, dtype="server",
                           device=device, source=spec.source, has_chat_template=has_template, handle=handle,
                           info=info)

    def endpoint_api(self, model: LoadedModel) -> str:
        """``chat`` or ``completions``: the api option, else chat exactly when the chat template is used."""
        api = model.spec.option("api")
        if api:
            return api
        return "chat" if model.use_chat_template else "completions"

    def render(self, model: LoadedModel, messages: list[dict], plain: str) -> str:
        """For ``chat``: the JSON of the message list sent; else the text sent to ``completions``."""
        if self.endpoint_api(model) == "chat":
            return json.dumps(messages, ensure_ascii=False)
        tokenizer = model.handle.tokenizer
        if model.use_chat_template and getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return plain

    # --- generate ------------------------------------------------------------------------------------
    def run_level(self, model: LoadedModel, prompts: Sequence[str], params: GenerateParams,
                  on_done: Callable[[Any], None] | None = None, window: Any = None):
        """Every prompt once at the level ``params`` names -> (Generations in prompt order, LevelRun).
        ``window`` (a meter's ``measure()`` context) encloses the request loop only: converting the results and
        client-side token counting happen after it closed."""
        from contextlib import nullcontext

        from llmbench.models.hf import cut_at_stop
        from llmbench.models.openai_load import run_level
        from llmbench.models.openai_stream import build_payload, endpoint
        from llmbench.models.served_timing import to_generation

        h: _Handle = model.handle
        api = self.endpoint_api(model)
        requests = []
        for i, prompt in enumerate(prompts):
            replica = h.replicas[i % len(h.replicas)]
            content = json.loads(prompt) if api == "chat" else prompt
            body = build_payload(api, h.model, content, params.max_new_tokens, tuple(params.stop), params.seed)
            requests.append((replica, endpoint(replica, api), body))
        level = LoadLevel(params.concurrency, params.rate)
        with window if window is not None else nullcontext():
            run = h.loop.run_until_complete(
                run_level(h.client, requests, level, params.seed, h.request_timeout_s, on_done))
        gens = [to_generation(r, p, params.stop, h.count, run.started_at, cut_at_stop)
                for r, p in zip(run.results, prompts)]
        return gens, run

    def generate(self, model: LoadedModel, prompts: Sequence[str], params: GenerateParams,
                 sync=None) -> list[Generation]:
        return self.run_level(model, prompts, params)[0]

    def unload(self, model: LoadedModel) -> None:
        if model.handle is not None:
            model.handle.close()
            model.handle = None


def _get_models(url: str, headers: dict, timeout_s: float) -> tuple[int, Any]:
    """(HTTP status, decoded JSON or None) of ``GET url/models``."""
    import httpx

    response = httpx.get(url.rstrip("/") + "/models", headers=headers,
                         timeout=httpx.Timeout(30.0, connect=timeout_s))
    try:
        body = response.json()
    except ValueError:
        body = None
    return response.status_code, body


def _load_tokenizer(tokenizer_id: str):
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    return AutoTokenizer.from_pretrained(str(Path(tokenizer_id).expanduser()) if tokenizer_id.startswith(
        ("/", ".", "~")) else tokenizer_id)


def count_parameters(model_id: str, note: Note) -> int | None:
    """The parameter count of the model in ``model_id`` (a directory or hub id with its config): from the
    safetensors headers when the weights are there (no tensor is read), else by building the model on the
    meta device from its config; None (unknown) when neither works."""
    path = Path(model_id).expanduser()
    files = sorted(path.glob("*.safetensors")) if path.is_dir() else []
    try:
        if files:
            from safetensors import safe_open

            total = 0
            for f in files:
                with safe_open(str(f), framework="numpy") as fh:
                    for name in fh.keys():
                        shape = fh.get_slice(name).get_shape()
                        n = 1
                        for d in shape:
                            n *= int(d)
                        total += n
            return total
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        from llmbench.meters.memory import parameter_count

        config = AutoConfig.from_pretrained(str(path) if path.is_dir() else model_id)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
        return parameter_count(model)
    except Exception as exc:  # noqa: BLE001 - unknown rather than guessed
        note(f"parameters of {model_id} could not be counted ({type(exc).__name__}); recorded as unknown")
        return None


def _bearer(headers: Mapping[str, str]) -> str | None:
    """The API key in an ``Authorization: Bearer KEY`` header, else None."""
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    return value[7:] if value and value.startswith("Bearer ") else None
