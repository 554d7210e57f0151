"""The gateway a plugin host's supervisor calls LLM providers through.

One call: check the request, pick the provider, refuse it when the namespace's monthly budget
is spent, read the provider's key from the organisation's secrets, call the provider through
this process's egress proxy (an :class:`~mixpeek_orchestration.sandbox.egress.EgressProxy`
whose allow list is the configured providers' hosts, and which refuses the platform's own
services and private addresses not named literally), and record the call's tokens, cost,
latency and outcome. The request comes from plugin code, so nothing in it is trusted: the
scope (organisation, namespace, plugin, collection) is the supervisor's own.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.llm.providers import Provider, cost_usd, pick
from mixpeek_orchestration.llm.usage import month_start

if TYPE_CHECKING:
    import httpx

    from mixpeek_orchestration.llm.usage import LLMUsage
    from mixpeek_orchestration.sandbox.egress import EgressProxy, Forwarder
    from mixpeek_orchestration.tenancy.secrets import OrganizationSecrets

logger = logging.getLogger(__name__)

MAX_MESSAGES = 256
MAX_TEXTS = 2048
MAX_CHARS = 2_000_000
CHAT_OPTIONS = frozenset(
    {"temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed",
     "response_format", "presence_penalty", "frequency_penalty", "n", "user"}
)  # fmt: skip


class LLMGateway:
    """Calls for one plugin in one scope (see the module docstring).

    Args:
        providers: the operator's providers.
        secrets: the organisation secrets store (the providers' keys).
        usage: where each call is recorded.
        budget: the namespace's monthly budget in USD (``None``: none), asked per call.
        scope: ``org_id``, ``namespace_id``, ``plugin_id`` and ``collection_id`` (``None`` for
            realtime) of every call.
        denied_endpoints: the platform's own services, which no provider URL may reach.
    """

    def __init__(
        self,
        providers: Sequence[Provider],
        *,
        secrets: OrganizationSecrets,
        usage: LLMUsage,
        budget: Callable[[], float | None],
        scope: dict[str, str | None],
        denied_endpoints: tuple[tuple[str, int], ...] = (),
    ) -> None:
        self.providers = list(providers)
        self.secrets = secrets
        self.usage = usage
        self.budget = budget
        self.scope = scope
        self.denied_endpoints = denied_endpoints
        self._lock = threading.Lock()
        self._egress: tuple[EgressProxy, Forwarder, Path, httpx.Client] | None = None

    # -- the service the host calls --------------------------------------------------------------

    def __call__(self, call: dict[str, Any]) -> dict[str, Any]:
        op = call.get("op")
        model = call.get("model")
        if op not in ("chat", "embed"):
            raise MixpeekError(ErrorCode.INVALID_REQUEST, f"unknown LLM operation {op!r}")
        if not isinstance(model, str) or not model:
            raise MixpeekError(ErrorCode.INVALID_REQUEST, "llm calls need a model name")
        provider = pick(self.providers, model, call.get("provider"))
        body = self._body(op, model, call)
        self._check_budget()
        start = time.perf_counter()
        try:
            answer = self._send(provider, op, model, body)
        except MixpeekError as exc:
            self._record(
                op, provider, model, 0, 0, (time.perf_counter() - start) * 1000, exc.detail
            )
            raise
        latency_ms = (time.perf_counter() - start) * 1000
        usage = answer.get("usage") or {}
        input_tokens = int(usage.get("prompt_tokens") or usage.get("input_tokens") or 0)
        output_tokens = int(usage.get("completion_tokens") or usage.get("output_tokens") or 0)
        cost, known = self._record(
            op, provider, model, input_tokens, output_tokens, latency_ms, None
        )
        result: dict[str, Any] = {
            "provider": provider.name,
            "model": answer.get("model") or model,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
            "cost_usd": cost,
            "cost_known": known,
            "latency_ms": round(latency_ms, 2),
        }
        if op == "chat":
            choices = answer.get("choices") or [{}]
            result["content"] = (choices[0].get("message") or {}).get("content") or ""
            result["finish_reason"] = choices[0].get("finish_reason")
        else:
            data = sorted(answer.get("data") or [], key=lambda d: d.get("index", 0))
            result["vectors"] = [d.get("embedding") for d in data]
        return result

    # -- steps -------------------------------------------------------------------------------

    @staticmethod
    def _body(op: str, model: str, call: dict[str, Any]) -> dict[str, Any]:
        if op == "chat":
            messages = call.get("messages")
            if (
                not isinstance(messages, list)
                or not messages
                or len(messages) > MAX_MESSAGES
                or not all(isinstance(m, dict) and "role" in m and "content" in m for m in messages)
            ):
                raise MixpeekError(
                    ErrorCode.INVALID_REQUEST,
                    f"messages must be 1-{MAX_MESSAGES} objects with role and content",
                )
            options = call.get("options") or {}
            unknown = sorted(set(options) - CHAT_OPTIONS)
            if unknown:
                raise MixpeekError(
                    ErrorCode.INVALID_REQUEST,
                    f"unsupported chat options {unknown}; supported: {sorted(CHAT_OPTIONS)}",
                )
            body = {"model": model, "messages": messages, **options}
        else:
            texts = call.get("texts")
            if (
                not isinstance(texts, list)
                or not texts
                or len(texts) > MAX_TEXTS
                or not all(isinstance(t, str) for t in texts)
            ):
                raise MixpeekError(
                    ErrorCode.INVALID_REQUEST, f"texts must be a list of 1-{MAX_TEXTS} strings"
                )
            body = {"model": model, "input": texts}
        if len(str(body)) > MAX_CHARS:
            raise MixpeekError(
                ErrorCode.PAYLOAD_TOO_LARGE, f"an llm call is limited to {MAX_CHARS} characters"
            )
        return body

    def _check_budget(self) -> None:
        budget = self.budget()
        if budget is None:
            return
        spent = self.usage.spent(str(self.scope["namespace_id"]), month_start())
        if spent >= budget:
            raise MixpeekError(
                ErrorCode.BUDGET_EXCEEDED,
                f"namespace {self.scope['namespace_id']} has spent ${spent:.4f} on LLM calls "
                f"this month, its budget is ${budget:.4f}: raise llm_budget_usd or wait for the "
                "next month",
            )

    def _key(self, provider: Provider) -> str | None:
        if provider.api_key_secret is None:
            return None
        org = str(self.scope["org_id"])
        key = self.secrets.values(org, [provider.api_key_secret]).get(provider.api_key_secret)
        if key is None:
            raise MixpeekError(
                ErrorCode.NOT_FOUND,
                f"LLM provider {provider.name!r} needs organisation secret "
                f"{provider.api_key_secret!r}, which is not set: store it with POST "
                "/v1/organizations/secrets",
            )
        return key

    def _send(
        self, provider: Provider, op: str, model: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        key = self._key(provider)
        if provider.kind == "litellm":
            return self._send_litellm(provider, op, model, body, key)
        import httpx

        path = "/chat/completions" if op == "chat" else "/embeddings"
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        url = f"{str(provider.base_url).rstrip('/')}{path}"
        try:
            response = self._client().post(
                url, json=body, headers=headers, timeout=provider.timeout_s
            )
        except httpx.HTTPError as exc:
            raise MixpeekError(
                ErrorCode.COMPONENT_UNAVAILABLE,
                f"LLM provider {provider.name!r} unreachable: {type(exc).__name__}",
            ) from None
        if response.status_code == 403 and b"blocked_by_sandbox" in response.content:
            raise MixpeekError(
                ErrorCode.BLOCKED_BY_SANDBOX,
                f"LLM provider {provider.name!r}: {response.text[:300]}",
            )
        if response.status_code >= 400:
            raise MixpeekError(
                ErrorCode.REALTIME_ERROR,
                f"LLM provider {provider.name!r} answered {response.status_code}: "
                f"{response.text[:300]}",
            )
        try:
            answer = response.json()
        except ValueError:
            raise MixpeekError(
                ErrorCode.REALTIME_ERROR, f"LLM provider {provider.name!r} answered non-JSON"
            ) from None
        if not isinstance(answer, dict):
            raise MixpeekError(
                ErrorCode.REALTIME_ERROR, f"LLM provider {provider.name!r} answered non-object"
            )
        return answer

    def _send_litellm(
        self, provider: Provider, op: str, model: str, body: dict[str, Any], key: str | None
    ) -> dict[str, Any]:
        import os

        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        options = {k: v for k, v in body.items() if k not in ("model", "messages", "input")}
        common: dict[str, Any] = {
            "model": model,
            "api_key": key,
            "api_base": provider.base_url,
            "timeout": provider.timeout_s,
            "num_retries": 0,
        }
        client = self._client()
        with self._lock:  # LiteLLM's HTTP client is module-wide: this gateway's, via its proxy
            litellm.client_session = client
        try:
            if op == "chat":
                response = litellm.completion(messages=body["messages"], **common, **options)
            else:
                response = litellm.embedding(input=body["input"], **common)
        except Exception as exc:  # LiteLLM maps every provider's errors to its own
            raise MixpeekError(
                ErrorCode.REALTIME_ERROR,
                f"LLM provider {provider.name!r} failed: {type(exc).__name__}: {str(exc)[:300]}",
            ) from None
        return response.model_dump() if hasattr(response, "model_dump") else dict(response)

    def _record(
        self,
        op: str,
        provider: Provider,
        model: str,
        input_tokens: int,
        output_tokens: int,
        latency_ms: float,
        error: str | None,
    ) -> tuple[float, bool]:
        cost, known = cost_usd(provider, model, input_tokens, output_tokens)
        try:
            self.usage.record(
                self.scope, op=op, provider=provider.name, model=model,
                input_tokens=input_tokens, output_tokens=output_tokens, cost_usd=cost,
                cost_known=known, latency_ms=latency_ms, error=error,
            )  # fmt: skip
        except Exception:  # the call happened: a metering hiccup must not fail it
            logger.exception("could not record an LLM call's usage")
        return round(cost, 8), known

    # -- egress -------------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        """This gateway's HTTP client, through its egress proxy (both made on first use, then
        kept for every call), the proxy reachable on loopback."""
        import httpx

        from mixpeek_orchestration.sandbox.egress import EgressProxy, EgressRules, Forwarder

        with self._lock:
            if self._egress is None:
                hosts = tuple(sorted({p.host for p in self.providers if p.host}))
                rules = EgressRules(allowed_hosts=hosts, denied_endpoints=self.denied_endpoints)
                work = Path(tempfile.mkdtemp(prefix="mixpeek-llm-egress-"))
                proxy = EgressProxy(work / "egress.sock", rules)
                proxy.start()
                forwarder = Forwarder(str(work / "egress.sock"), port=0)
                forwarder.start()
                client = httpx.Client(proxy=forwarder.url)
                self._egress = (proxy, forwarder, work, client)
            return self._egress[3]

    def close(self) -> None:
        import shutil

        with self._lock:
            egress, self._egress = self._egress, None
        if egress is not None:
            proxy, forwarder, work, client = egress
            client.close()
            proxy.close()
            forwarder.listener.close()
            shutil.rmtree(work, ignore_errors=True)
