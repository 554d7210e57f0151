"""The LLM accessor's platform side: providers the operator configures, the gateway a plugin
host's supervisor calls them through, and the usage every call leaves.

Plugin code calls :func:`mixpeek_orchestration.sdk.llm.chat` / ``embed``; the call goes over
its host's channel to the supervisor (the batch actor or Serve replica, outside the sandbox),
whose :class:`~mixpeek_orchestration.llm.gateway.LLMGateway` checks the namespace's budget,
takes the provider's credential from the organisation's secrets (plugin code never sees it),
calls the provider through an egress proxy that reaches only the configured providers, and
records tokens, cost, latency and outcome per organisation, namespace, plugin and collection
(:class:`~mixpeek_orchestration.llm.usage.LLMUsage`), which ``GET /v1/organizations/usage``
and ``/metrics`` report.
"""
