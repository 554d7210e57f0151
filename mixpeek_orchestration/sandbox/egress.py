"""The egress proxy: the only way a sandboxed plugin host reaches the network.

Inside the sandbox there is no network, only a loopback. A plugin that needs external hosts
(an ``API`` step, hosts its manifest declares, hosts the operator allows) talks HTTP through
``HTTP_PROXY`` / ``HTTPS_PROXY``, which the host points at :class:`Forwarder`, a listener on the
sandbox's own ``127.0.0.1`` that carries each connection over a unix socket bound into the
sandbox to :class:`EgressProxy`, on the platform side. The proxy enforces the rules, on every
connection, against the address it actually connects to (resolved once: no DNS rebinding):

* ``CONNECT host:port`` (TLS stays end to end) and absolute-form plain HTTP requests, one request
  per connection (``Connection: close``), so a kept-alive connection cannot smuggle a second
  host; anything else is refused;
* the host must match the allow list (exact names, ``*.suffix``, IPs or CIDRs), or the URL must
  start with one of the platform's own signed blob URL prefixes (the namespace's files);
* whatever the allow list says, loopback, private, link-local, multicast, reserved and cloud
  metadata addresses are refused, unless the operator allowed that address literally (a local
  test service), and so are the platform's own service endpoints (metadata store, Ray, Serve,
  Dagster, the API beyond its signed blob URLs).

A refusal is an HTTP 403 whose body says ``blocked_by_sandbox`` and why; ``requests``, ``httpx``
and ``aiohttp`` (with ``trust_env=True``) surface it as a proxy error.

Example:
    >>> proxy = EgressProxy(Path("/tmp/egress/egress.sock"), EgressRules(["api.openai.com"]))
    >>> proxy.start()          # a daemon thread serving the unix socket
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import ipaddress
import logging
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

FORWARD_PORT = 3128
"""The forwarder's port inside a sandbox with its own network namespace (Landlock allows it)."""
METADATA_ADDRESSES = frozenset(
    {"169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200"}
)
_MAX_HEAD = 64 * 1024


@dataclass(frozen=True)
class EgressRules:
    """What a plugin host may reach.

    Args:
        allowed_hosts: host names, ``*.suffix`` patterns, IPs or CIDRs.
        url_prefixes: URL prefixes of the platform's own signed blob URLs (plain HTTP: the
            request's URL must start with one; HTTPS: the host and port of one).
        denied_endpoints: ``(host, port)`` of platform services, refused whatever else says.
    """

    allowed_hosts: tuple[str, ...] = ()
    url_prefixes: tuple[str, ...] = ()
    denied_endpoints: tuple[tuple[str, int], ...] = ()
    _literal_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        default=(), repr=False
    )

    def __post_init__(self) -> None:
        networks = []
        for pattern in self.allowed_hosts:
            try:
                networks.append(ipaddress.ip_network(pattern.strip("[]"), strict=False))
            except ValueError:
                continue
        object.__setattr__(self, "_literal_networks", tuple(networks))

    @property
    def enabled(self) -> bool:
        return bool(self.allowed_hosts or self.url_prefixes)

    def _named(self, host: str) -> bool:
        host = host.lower().strip("[]")
        return any(
            host == p.lower() or (p.startswith("*.") and fnmatch.fnmatch(host, p.lower()))
            for p in self.allowed_hosts
        )

    def _prefix_hosts(self) -> set[tuple[str, int]]:
        out = set()
        for prefix in self.url_prefixes:
            parts = urlsplit(prefix)
            default = 443 if parts.scheme == "https" else 80
            out.add(((parts.hostname or "").lower(), parts.port or default))
        return out

    def check(self, host: str, port: int, *, url: str | None) -> str | None:
        """``None`` when ``host:port`` (``url`` for plain HTTP) may be reached, else why not;
        the address check happens separately, on what ``host`` resolves to."""
        if url is not None and any(url.startswith(p) for p in self.url_prefixes):
            return None
        if (
            url is None
            and (host.lower(), port) in self._prefix_hosts()
            and any(p.startswith("https://") for p in self.url_prefixes)
        ):
            return None
        if (host.lower(), port) in {(h.lower(), p) for h, p in self.denied_endpoints}:
            return f"{host}:{port} is a platform service"
        if self._named(host) or any(_in(host, n) for n in self._literal_networks):
            return None
        return f"{host} is not an allowed host"

    def check_address(self, host: str, port: int, address: str, *, url: str | None) -> str | None:
        """``None`` when connecting to ``address`` (what ``host`` resolved to) is allowed."""
        ip = ipaddress.ip_address(address)
        if str(ip) in METADATA_ADDRESSES:
            return f"{host} resolves to a cloud metadata address ({address})"
        platform_blob = url is not None and any(url.startswith(p) for p in self.url_prefixes)
        platform_blob |= url is None and (host.lower(), port) in self._prefix_hosts()
        if platform_blob:
            return None
        if (address, port) in set(self.denied_endpoints):
            return f"{host} ({address}:{port}) is a platform service"
        internal = (
            ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified
        )  # fmt: skip
        if internal and not any(ip in n for n in self._literal_networks):
            return f"{host} resolves to an internal address ({address})"
        return None


def _in(host: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")) in network
    except ValueError:
        return False


def denied_endpoints(urls: Iterable[str | None]) -> tuple[tuple[str, int], ...]:
    """``(host, port)`` of the platform's services from their URLs / ``host:port`` addresses,
    each also by its IP addresses."""
    out: set[tuple[str, int]] = set()
    for url in urls:
        if not url:
            continue
        rest = url.partition("://")[2] if "://" in url else url
        netloc = rest.split("/", 1)[0].rpartition("@")[2]
        for hostport in netloc.split(","):  # mongodb://a:1,b:2
            host, _, port = hostport.rpartition(":")
            if not host or not port.isdigit():
                continue
            host = host.strip("[]").lower()
            out.add((host, int(port)))
            try:
                for info in socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM):
                    out.add((str(info[4][0]), int(port)))
            except OSError:
                continue
    return tuple(sorted(out))


class EgressProxy:
    """The platform side: an HTTP proxy on a unix socket, enforcing :class:`EgressRules`."""

    def __init__(self, socket_path: Path, rules: EgressRules) -> None:
        self.socket_path = socket_path
        self.rules = rules
        self.refused: list[str] = []  # what it refused, for the host's log and tests
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._server: asyncio.AbstractServer | None = None

    def start(self) -> None:
        thread = threading.Thread(target=self._run, name="egress-proxy", daemon=True)
        thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the egress proxy did not start")

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._server = loop.run_until_complete(
            asyncio.start_unix_server(self._serve, path=str(self.socket_path))
        )
        self.socket_path.chmod(0o666)
        self._ready.set()
        loop.run_forever()

    def close(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        self.socket_path.unlink(missing_ok=True)

    async def _refuse(self, writer: asyncio.StreamWriter, status: int, reason: str) -> None:
        self.refused.append(reason)
        logger.warning("egress refused: %s", reason)
        body = f"blocked_by_sandbox: {reason}\n".encode()
        writer.write(
            f"HTTP/1.1 {status} Blocked\r\nContent-Type: text/plain\r\nX-Mixpeek-Blocked: "
            f"egress\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            return
        if len(head) > _MAX_HEAD:
            await self._refuse(writer, 431, "request head too large")
            return
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            await self._refuse(writer, 400, "malformed request line")
            return
        if method == "CONNECT":
            host, _, port_text = target.rpartition(":")
            url = None
        elif target.startswith("http://"):
            parts = urlsplit(target)
            host, port_text, url = parts.hostname or "", str(parts.port or 80), target
        else:
            await self._refuse(writer, 400, f"{method} {target[:80]}: not a proxy request")
            return
        try:
            port = int(port_text)
        except ValueError:
            await self._refuse(writer, 400, f"bad port in {target[:80]}")
            return
        host = host.strip("[]")
        reason = self.rules.check(host, port, url=url)
        if reason is not None:
            await self._refuse(writer, 403, reason)
            return
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            await self._refuse(writer, 502, f"cannot resolve {host}: {exc}")
            return
        address = str(infos[0][4][0])
        reason = self.rules.check_address(host, port, address, url=url)
        if reason is not None:
            await self._refuse(writer, 403, reason)
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(address, port), timeout=30
            )
        except (OSError, TimeoutError) as exc:
            await self._refuse(writer, 502, f"cannot connect to {host}:{port}: {exc}")
            return
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
        else:
            parts = urlsplit(target)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            headers = [
                line
                for line in lines[1:]
                if line and not line.lower().startswith(("proxy-", "connection:", "keep-alive:"))
            ]
            up_writer.write(
                (f"{method} {path} {version}\r\n" + "\r\n".join(headers)
                 + "\r\nConnection: close\r\n\r\n").encode("latin-1")
            )  # fmt: skip
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
    try:
        while chunk := await source.read(1 << 16):
            target.write(chunk)
            await target.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            target.close()


class Forwarder:
    """The sandbox side: ``127.0.0.1:port`` -> the proxy's unix socket, a thread pair per
    connection (started by the host before any plugin code)."""

    def __init__(self, socket_path: str, *, port: int = FORWARD_PORT) -> None:
        self.socket_path = socket_path
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        threading.Thread(target=self._accept, name="egress-forwarder", daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.socket_path)
            except OSError:
                client.close()
                upstream.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_splice, args=(a, b), daemon=True).start()


def _splice(source: socket.socket, target: socket.socket) -> None:
    try:
        while chunk := source.recv(1 << 16):
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
