"""What a service instance serves and how: one validated object, built by the CLI (or a test)
and handed down; nothing reads the environment after this."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from reprolab.core.errors import ReprolabError

TOKEN_ENV = "REPROLAB_API_TOKEN"
LM_BACKENDS = ("auto", "llama.cpp", "transformers")
LOOPBACK_NAMES = ("localhost",)


class ServeError(ReprolabError):
    """A setting the service cannot start with."""


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    tasks: tuple[str, ...] = ()  # empty: every task of params.yaml's registry
    alias: str = "champion"
    lms: dict[str, str] = field(default_factory=dict)  # name -> directory or models:/ URI
    params_path: Path = Path("params.yaml")
    token: str | None = None
    insecure: bool = False
    metrics_public: bool = False
    reload_interval: float = 30.0  # seconds between alias checks; 0: only /admin/reload
    max_batch: int = 1  # micro-batching of per-row models; 1: off
    max_wait_ms: float = 2.0
    max_body_bytes: int = 16 * 2**20
    # a nuclei image is segmented tile by tile in a worker thread, in time linear in its pixels:
    # 2048² (about 3x the largest Data Science Bowl image) bounds one request to seconds
    max_image_pixels: int = 2048 * 2048
    max_tokens: int = 1024  # new tokens one LLM request may ask for
    # what one LLM request may send, checked before any templating or tokenizing: the
    # characters of its prompt or of all its messages together, and its message count
    max_prompt_chars: int = 200_000
    max_messages: int = 256
    threads: int | None = None  # torch intra-op threads; None: the machine's cores
    # how causal LMs generate: "llama.cpp" (a llama-server per model, batching concurrent
    # requests), "transformers" (in this process), "auto": llama.cpp when it is built
    lm_backend: str = "auto"
    lm_slots: int = 4  # llama.cpp: requests generated side by side per model
    # llama.cpp: tokens (prompt and answer) of one request, at most the model's context; each
    # slot holds a KV cache this long (SmolLM2-135M: 22.5 KiB a token, 360 MiB for 4 x 4096)
    lm_context: int | None = 4096
    # chat's defaults against loops, when a request sets no repetition_penalty: the
    # repetition penalty (both backends) and llama.cpp's DRY multiplier (docs/llm.md)
    chat_repeat_penalty: float = 1.1
    chat_dry: float = 0.8
    ui: bool = True  # the web page at /ui
    # people the page serves at once per kind of action (a chat, a prediction): its events
    # mostly wait on this service's own API, so a few per core; None: 4 per core, at least 8
    ui_concurrency: int | None = None
    # with --workers N: the directory the workers' metrics meet in (set by `run`, not a flag)
    metrics_dir: str | None = None
    # with --workers N: a worker takes connections only once its first loads are done, so no
    # request or /ready check reaches a cold worker beside a warm one (set by `run`)
    load_first: bool = False
    mlflow_ui: str | None = None  # where the page's run links point (`make ui`'s address)

    def check(self) -> None:
        """The one unsafe combination: a token-less service reachable from other machines."""
        if not 0 < self.port < 65536:
            raise ServeError(f"--port: must be in 1..65535, got {self.port}")
        if self.max_tokens < 1:
            raise ServeError(f"--max-tokens: must be >= 1, got {self.max_tokens}")
        if self.max_prompt_chars < 1:
            raise ServeError(f"max_prompt_chars: must be >= 1, got {self.max_prompt_chars}")
        if self.max_messages < 1:
            raise ServeError(f"max_messages: must be >= 1, got {self.max_messages}")
        if self.max_image_pixels < 1:
            raise ServeError(f"--max-image-pixels: must be >= 1, got {self.max_image_pixels}")
        if self.ui_concurrency is not None and self.ui_concurrency < 1:
            raise ServeError(f"--ui-concurrency: must be >= 1, got {self.ui_concurrency}")
        if self.lm_backend not in LM_BACKENDS:
            raise ServeError(
                f"--lm-backend: expected one of {list(LM_BACKENDS)}, got {self.lm_backend!r}"
            )
        if self.lm_slots < 1:
            raise ServeError(f"--lm-slots: must be >= 1, got {self.lm_slots}")
        if self.lm_context is not None and self.lm_context < 16:
            raise ServeError(f"--lm-context: must be >= 16, got {self.lm_context}")
        if self.lm_backend == "llama.cpp":
            from reprolab.llamacpp import install

            install.require()
        if self.max_batch < 1:
            raise ServeError(f"--max-batch: must be >= 1, got {self.max_batch}")
        if self.reload_interval < 0:
            raise ServeError(f"--reload-interval: must be >= 0, got {self.reload_interval}")
        if self.token is None and not self.insecure and not is_loopback(self.host):
            raise ServeError(
                f"--host {self.host}: no API token is set, so the service binds only to "
                f"loopback; set {TOKEN_ENV} (or --token-file), or pass --insecure"
            )

    @property
    def loopback_url(self) -> str:
        """How the service reaches itself (the web page calls the API over HTTP)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def batching(self) -> bool:
        return self.max_batch > 1

    @property
    def backend(self) -> str:
        """The LM backend in use: "auto" resolved by whether llama.cpp is built."""
        if self.lm_backend != "auto":
            return self.lm_backend
        from reprolab.llamacpp import install

        return "llama.cpp" if install.available() else "transformers"


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(token_file: Path | None) -> str | None:
    """The bearer token: the file's first line when given, else the environment; empty: none."""
    if token_file is not None:
        try:
            text = Path(token_file).read_text().strip()
        except OSError as err:
            raise ServeError(f"--token-file {token_file}: cannot read it ({err.strerror})") from err
        if not text:
            raise ServeError(f"--token-file {token_file}: the file is empty")
        return text.splitlines()[0].strip()
    return os.environ.get(TOKEN_ENV, "").strip() or None


def parse_lms(pairs: tuple[str, ...]) -> dict[str, str]:
    """`name=location` pairs of --lm."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, location = pair.partition("=")
        if not sep or not name.strip() or not location.strip():
            raise ServeError(f"--lm {pair!r}: expected NAME=DIRECTORY (or NAME=models:/...)")
        location = location.strip()
        if "://" not in location and not location.startswith("models:/"):
            folder = Path(location).expanduser()
            if not folder.is_dir():
                raise ServeError(f"--lm {pair}: no such model directory")
            location = str(folder.resolve())
        out[name.strip()] = location
    return out


def ui_concurrency(settings: ServeSettings) -> int:
    """How many of one page event run at once: the setting, else 4 per core (at least 8)."""
    if settings.ui_concurrency is not None:
        return settings.ui_concurrency
    return max(8, 4 * (os.cpu_count() or 1))
