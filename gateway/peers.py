"""Who is on the other end: trusted proxies and the client address behind them."""

from __future__ import annotations

from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network


@lru_cache(maxsize=16)
def _proxy_networks(entries: tuple[str, ...]) -> tuple[tuple[IPv4Network | IPv6Network, ...],
                                                        frozenset[str]]:
    networks, names = [], set()
    for entry in entries:
        try:
            networks.append(ip_network(entry, strict=False))
        except ValueError:
            names.add(entry)  # a host name as the server reports the peer (e.g. a unix socket)
    return tuple(networks), frozenset(names)


def is_trusted_proxy(peer: str | None, trusted: list[str]) -> bool:
    """Whether the peer address is one of ``trusted`` (addresses or CIDR networks)."""
    if not peer or not trusted:
        return False
    networks, names = _proxy_networks(tuple(trusted))
    if peer in names:
        return True
    try:
        address = ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in networks)


def client_address(peer: str | None, forwarded_for: str | None, trusted: list[str]) -> str | None:
    """The client's address: the TCP peer, or, from a trusted proxy, what it forwarded.

    The proxy *sets* ``X-Forwarded-For`` to the address it saw (deploy/nginx), so the last entry
    is the one a trusted party wrote; anything before it the client could have sent.
    """
    if forwarded_for and is_trusted_proxy(peer, trusted):
        last = forwarded_for.rsplit(",", 1)[-1].strip()
        if last:
            return last[:64]
    return peer
