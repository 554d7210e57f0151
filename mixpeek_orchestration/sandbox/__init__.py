"""Keeping plugin code in: the runtime guard and the host services plugin code is given.

* :mod:`~mixpeek_orchestration.sandbox.guard`: the in-process PEP 578 guard (clear errors for
  refused actions, the inner layer of the isolation);
* :mod:`~mixpeek_orchestration.sandbox.host_services`: :class:`GuardedHost`, the platform side
  of the SDK's helpers (media tools, assets, namespace models), each argument checked against
  the plugin's guard policy before the host acts for it.
"""
