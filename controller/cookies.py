"""OpenFlow cookie layout: every flow netshadow installs says which tenant and application it serves.

Statistics replies carry the cookie, so per-tenant, per-application counters are a sum over
cookies, with no guessing from match fields::

    bits 63..56  magic 0x6e ('n') - marks flows installed by netshadow
    bits 55..40  tenant number (1-based index in the spec; 0 = no tenant, infrastructure)
    bits 39..32  application (1-based index in the tenant; see the APP_* codes for the rest)
    bits 31..24  direction: 1 = client to server, 2 = server to client, 0 = not applicable
    bits 23..0   reserved (0)
"""

from __future__ import annotations

from dataclasses import dataclass

MAGIC = 0x6E
MAGIC_MASK = 0xFF << 56
APP_NONE = 0x00  # infrastructure: trunk ports, table-miss
APP_ICMP = 0xFD
APP_ARP = 0xFE
APP_DENY = 0xFF
DIR_NONE, DIR_FORWARD, DIR_REVERSE = 0, 1, 2


class CookieError(ValueError):
    """A cookie that netshadow did not make, or fields out of range."""


@dataclass(frozen=True)
class Cookie:
    tenant: int = 0
    app: int = APP_NONE
    direction: int = DIR_NONE

    def __post_init__(self):
        if not 0 <= self.tenant <= 0xFFFF:
            raise CookieError(f"tenant: must be 0..65535 (got {self.tenant!r})")
        if not 0 <= self.app <= 0xFF:
            raise CookieError(f"app: must be 0..255 (got {self.app!r})")
        if self.direction not in (DIR_NONE, DIR_FORWARD, DIR_REVERSE):
            raise CookieError(f"direction: must be 0, 1 or 2 (got {self.direction!r})")

    def encode(self) -> int:
        return (MAGIC << 56) | (self.tenant << 40) | (self.app << 32) | (self.direction << 24)

    @classmethod
    def decode(cls, value: int) -> Cookie:
        if not 0 <= value < 2**64 or value >> 56 != MAGIC:
            raise CookieError(f"cookie: not a netshadow cookie (got {value:#x})")
        return cls((value >> 40) & 0xFFFF, (value >> 32) & 0xFF, (value >> 24) & 0xFF)
