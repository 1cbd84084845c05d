"""Which signed URLs may be fetched, and which addresses a connection for one may reach.

A signed URL comes from a third party's answer; fetching it blindly would let that answer point
the function at the instance metadata service, the Lambda runtime API, a private network or any
other host. Two checks, both raising ``PermanentError("signed_url_rejected", detail)``:

* :meth:`SignedUrlPolicy.check` (before every request, redirects included): scheme, userinfo, the
  host's syntax (RFC 1035 §2.3.4: labels ≤ 63 octets, names ≤ 253), the host against
  ``SIGNED_URL_ALLOWED_HOSTS``, the port.
* :meth:`SignedUrlPolicy.admit_connection` (in the transport, for every new connection, with the
  addresses the name resolved to): every address must be globally routable, or listed literally
  (address or CIDR) in the allow-list. The transport then connects to one of exactly these
  addresses, so there is no gap between the check and the use (DNS rebinding).

Allow-list grammar (comma-separated, case-insensitive, a trailing dot ignored), see
:func:`parse_allow_entry`: ``name``, ``*.domain`` (any name below ``domain``), ``amazon-s3`` (Amazon
S3's own endpoint names, :data:`AMAZON_S3_HOST`), an IPv4/IPv6 address (``[v6]`` brackets allowed)
or CIDR; names and addresses may carry ``:port``. Port 443 is always admitted; another port only
when an entry matching the host names it, or when the host is (or resolves only to) addresses
listed literally without a port (local stacks).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from tao_results.errors import PermanentError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

HTTPS_PORT = 443
MAX_NAME_LENGTH = 253  # RFC 1035 §2.3.4 (255 octets on the wire = 253 characters in text form)
MAX_LABEL_LENGTH = 63
AMAZON_S3 = "amazon-s3"

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_FORBIDDEN_URL_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\]")
_ENTRY_PORT = re.compile(r"^(?P<host>.*?)(?::(?P<port>\d{1,5}))?$")

# Amazon S3's endpoint names, from "Amazon S3 endpoints and quotas" (AWS General Reference) and
# "Virtual hosting of buckets" (S3 User Guide): path-style hosts and the same with a bucket in
# front (virtual-hosted; buckets may contain dots). Regional (s3.<region>), legacy dash-regional
# (s3-<region>, s3-external-1), global (s3.amazonaws.com), dual-stack, Transfer Acceleration, and
# the China partition (amazonaws.com.cn: regional and dual-stack only, no acceleration there).
# Deliberately not: access points, Object Lambda, S3 Express, FIPS, website and VPC endpoint names
# (list them explicitly when the storage uses them).
_REGION = r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}"
AMAZON_S3_HOST = re.compile(
    r"^(?:[a-z0-9][a-z0-9.-]*\.)?(?:"
    rf"s3(?:\.dualstack)?\.{_REGION}\.amazonaws\.com(?:\.cn)?"
    rf"|s3(?:-external-1|-{_REGION})?\.amazonaws\.com"
    r"|s3-accelerate(?:\.dualstack)?\.amazonaws\.com"
    r")$"
)

# Public suffixes a "*.domain" pattern may not be as broad as (it must name a registrable domain
# or something below one). Without a runtime package the Public Suffix List is approximated:
# every single-label suffix (a TLD: *.com, *.uk, *.local) is refused, and so is a two-label one
# whose last label is a two-letter country code and whose first is one of the second-level labels
# country registries commonly delegate (co.uk, com.au, ac.jp, gov.br, com.cn, ...). Limits: rarer
# registry suffixes (e.g. "k12.ak.us", "nsw.edu.au", city-level Japanese suffixes) are not known and
# pass as if registrable; private-section entries of the list (e.g. "s3.amazonaws.com") are
# registrable here, as in the list's ICANN section.
_COMMON_SECOND_LEVEL = frozenset(
    {
        "ac",
        "co",
        "com",
        "edu",
        "gob",
        "gouv",
        "gov",
        "govt",
        "go",
        "gv",
        "int",
        "ltd",
        "me",
        "mil",
        "net",
        "nhs",
        "nic",
        "nom",
        "or",
        "org",
        "plc",
        "police",
        "sch",
    }
)

# RFC 6890 special-purpose address registries (IANA), as (network, why). An address in one of
# these is not globally routable: it is refused unless listed literally. Ordered most specific
# first; IPv4-mapped, NAT64 and 6to4 forms are judged by the IPv4 address they embed.
_IPV4_SPECIAL: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(net), why)
    for net, why in (
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private, RFC 1918"),
        ("100.64.0.0/10", "shared address space, CGNAT"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private, RFC 1918"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("192.168.0.0/16", "private, RFC 1918"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
    )
)
_IPV6_SPECIAL: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(net), why)
    for net, why in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "NAT64 local-use"),
        ("100::/64", "discard-only"),
        ("2001:db8::/32", "documentation"),
        ("2001::/23", "IETF protocol assignments"),
        ("3fff::/20", "documentation"),
        ("fc00::/7", "unique-local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    )
)
_IPV6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")


def is_ip_literal(text: str) -> bool:
    """An IPv4 or IPv6 address (brackets allowed), as opposed to a host name."""
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def why_not_global(address: IPAddress) -> str | None:
    """Why ``address`` is not globally routable (e.g. ``"loopback"``), or None when it is."""
    if isinstance(address, ipaddress.IPv4Address):
        return next((why for net, why in _IPV4_SPECIAL if address in net), None)
    embedded, form = _embedded_ipv4(address)
    if embedded is not None:
        why = why_not_global(embedded)
        return f"{form} {why}" if why else None
    why = next((why for net, why in _IPV6_SPECIAL if address in net), None)
    if why is None and address not in _IPV6_GLOBAL_UNICAST:
        why = "not global unicast"
    return why


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address | None, str]:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped, "IPv4-mapped"
    if address in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "NAT64"
    if address.sixtofour is not None:
        return address.sixtofour, "6to4"
    return None, ""


def host_name_problem(host: str) -> str | None:
    """What makes ``host`` (lower case, no trailing dot) an invalid DNS host name, or None."""
    if len(host) > MAX_NAME_LENGTH:
        return f"the name is longer than {MAX_NAME_LENGTH} characters"
    for label in host.split("."):
        if len(label) > MAX_LABEL_LENGTH:
            return f"a label is longer than {MAX_LABEL_LENGTH} octets"
        if not _LABEL.match(label):
            return "labels may hold only letters, digits and inner hyphens"
    return None


@dataclass(frozen=True)
class AllowEntry:
    """One ``SIGNED_URL_ALLOWED_HOSTS`` entry, parsed."""

    kind: Literal["name", "suffix", "network", "amazon-s3"]
    name: str = ""  # the exact name, or the domain below which "*.domain" matches
    network: IPNetwork | None = None
    port: int | None = None

    def __str__(self) -> str:
        if self.kind == "amazon-s3":
            return AMAZON_S3
        if self.network is not None:
            net = self.network
            text = str(net.network_address) if net.num_addresses == 1 else str(net)
            if self.port is None:
                return text
            return f"[{text}]:{self.port}" if net.version == 6 else f"{text}:{self.port}"
        text = f"*.{self.name}" if self.kind == "suffix" else self.name
        return text if self.port is None else f"{text}:{self.port}"

    def matches_name(self, host: str) -> bool:
        if self.kind == "name":
            return host == self.name
        if self.kind == "suffix":
            return host.endswith("." + self.name)
        return self.kind == "amazon-s3" and AMAZON_S3_HOST.match(host) is not None

    def contains(self, address: IPAddress) -> bool:
        return self.network is not None and _comparable(address) in self.network


def parse_allow_entry(text: str) -> AllowEntry:
    """Parse one allow-list entry; ``ValueError`` says what is wrong with it."""
    entry = text.strip().lower()
    if entry == AMAZON_S3:
        return AllowEntry("amazon-s3")
    network = _network(entry)
    if network is not None:
        return AllowEntry("network", network=network)
    if entry.startswith("["):  # [v6] or [v6]:port
        host, bracket, rest = entry[1:].partition("]")
        network = _network(host)
        if network is None or not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{text.strip()!r} is not a bracketed IPv6 address")
        if rest and "/" in host:
            raise ValueError(f"{text.strip()!r}: a CIDR admits any port and takes none")
        return AllowEntry("network", network=network, port=_port(rest[1:]) if rest else None)
    match = _ENTRY_PORT.match(entry)
    assert match is not None  # the pattern matches every string
    host = match.group("host").rstrip(".")
    port = _port(match.group("port")) if match.group("port") else None
    network = _network(host)
    if network is not None:
        if "/" in host:
            raise ValueError(f"{text.strip()!r}: a CIDR admits any port and takes none")
        return AllowEntry("network", network=network, port=port)
    wildcard = host.startswith("*.")
    name = host[2:] if wildcard else host
    problem = host_name_problem(name) if name else "it is empty"
    if problem:
        raise ValueError(f"{text.strip()!r} is not a host name, '*.domain' pattern, IP or CIDR ({problem})")
    if wildcard and is_public_suffix(name):
        raise ValueError(f"{text.strip()!r} is broader than a registrable domain")
    return AllowEntry("suffix" if wildcard else "name", name=name, port=port)


def parse_allow_list(entries: Iterable[str]) -> tuple[AllowEntry, ...]:
    return tuple(parse_allow_entry(entry) for entry in entries)


def is_public_suffix(domain: str) -> bool:
    """Whether ``domain`` is (approximately, see above) a public suffix rather than registrable."""
    labels = domain.split(".")
    if len(labels) == 1:
        return True
    return len(labels) == 2 and len(labels[1]) == 2 and labels[0] in _COMMON_SECOND_LEVEL


def _network(text: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError:
        return None


def _port(text: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is outside 1-65535")
    return port


def _comparable(address: IPAddress) -> IPAddress:
    """The address without an IPv6 scope. An IPv4-mapped address stays IPv6: listing 127.0.0.1
    does not list ::ffff:127.0.0.1 (list both forms to admit both)."""
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        return ipaddress.IPv6Address(str(address).split("%", 1)[0])
    return address


@dataclass(frozen=True)
class SignedUrlPolicy:
    """``SIGNED_URL_ALLOWED_HOSTS`` (entries as text) and ``ALLOW_INSECURE_HTTP``, enforced."""

    allowed_host_patterns: tuple[str, ...]
    allow_plain_http: bool
    entries: tuple[AllowEntry, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", parse_allow_list(self.allowed_host_patterns))

    @property
    def allowed_schemes(self) -> tuple[str, ...]:
        return ("https", "http") if self.allow_plain_http else ("https",)

    def check(self, url: object) -> str:
        """Return ``url`` if it may be fetched, else raise ``PermanentError(signed_url_rejected)``.

        Details name the host, port or scheme refused, never the query (it holds the signature).
        """
        if not isinstance(url, str) or not url:
            raise _rejected("the signed URL is not a non-empty string")
        if _FORBIDDEN_URL_CHARACTERS.search(url):
            raise _rejected("the signed URL contains whitespace, control characters or backslashes")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise _rejected("the signed URL cannot be parsed") from None
        if parts.scheme not in self.allowed_schemes:
            why = (
                "ALLOW_INSECURE_HTTP is off"
                if parts.scheme == "http"
                else "allowed: " + ", ".join(self.allowed_schemes)
            )
            raise _rejected(f"scheme {parts.scheme!r} not allowed ({why})")
        if "@" in parts.netloc:
            raise _rejected("the signed URL carries userinfo")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise _rejected("the signed URL has no host")
        self.check_host_and_port(host, port or (443 if parts.scheme == "https" else 80))
        return url

    def check_host_and_port(self, host: str, port: int) -> None:
        """The name-level check of ``host`` (as in a URL) and ``port``, before any resolution."""
        host = host.lower().rstrip(".")
        if is_ip_literal(host):
            address = ipaddress.ip_address(host.strip("[]"))
            listed = self._listing(address)
            if listed is None:
                raise _rejected(f"host {host!r} is an IP address not listed in SIGNED_URL_ALLOWED_HOSTS")
            if not _listed_for_port(listed, port):
                raise _rejected(f"port {port} not allowed for host {host!r} (listed for {_ports(listed)})")
            return
        problem = host_name_problem(host)
        if problem:
            raise _rejected(f"host {_shorten(host)!r} is not a valid DNS name: {problem}")
        matching = [entry for entry in self.entries if entry.matches_name(host)]
        if not matching:
            raise _rejected(f"host {host!r} is not in SIGNED_URL_ALLOWED_HOSTS")
        could_be_listed = any(e.network is not None and e.port in (None, port) for e in self.entries)
        if not (self._port_admitted_by_name(host, port) or could_be_listed):
            raise _rejected(f"port {port} not allowed for host {host!r}")

    def admit_connection(self, host: str, port: int, addresses: Sequence[IPAddress]) -> None:
        """Refuse unless every address ``host`` resolved to may be connected to on ``port``.

        An address listed literally (address or CIDR) is admitted on its listed port only, or,
        listed without a port, on any port. Any other address must be globally routable and the
        port admitted by name (443, or an entry matching the host that names the port). One refused
        address refuses the connection: which address the client would pick is not ours to guess.
        """
        self.check_host_and_port(host, port)
        host = host.lower().rstrip(".")
        for address in addresses:
            listed = self._listing(address)
            if listed is not None and _listed_for_port(listed, port):
                continue
            why = why_not_global(address)
            if why is not None:
                if listed is not None:
                    raise _rejected(
                        f"port {port} not allowed for host {host!r} (resolved to {address},"
                        f" listed for {_ports(listed)})"
                    )
                raise _rejected(f"host {host!r} resolved to {address} ({why}), not allowed")
            if not self._port_admitted_by_name(host, port):
                raise _rejected(f"port {port} not allowed for host {host!r} (resolved to {address})")

    def _listing(self, address: IPAddress) -> list[AllowEntry] | None:
        listed = [entry for entry in self.entries if entry.contains(address)]
        return listed or None

    def _port_admitted_by_name(self, host: str, port: int) -> bool:
        if port == HTTPS_PORT:
            return True
        return any(entry.port == port and entry.matches_name(host) for entry in self.entries)


def _listed_for_port(listed: list[AllowEntry], port: int) -> bool:
    """Whether an address entry that lists the address admits ``port`` (no port: any port)."""
    return any(entry.port in (None, port) for entry in listed)


def _ports(listed: list[AllowEntry]) -> str:
    return "port " + ", ".join(sorted({str(entry.port) for entry in listed if entry.port is not None}))


def _shorten(host: str) -> str:
    return host if len(host) <= 80 else host[:77] + "..."


def _rejected(detail: str) -> PermanentError:
    return PermanentError("signed_url_rejected", detail)
