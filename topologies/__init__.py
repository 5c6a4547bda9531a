"""Network specs: the contract every stage reads. Imports nothing of netshadow's own."""

from .spec import (
    Application,
    Host,
    Link,
    NetworkSpec,
    Policy,
    SpecError,
    Switch,
    Tenant,
    bundled,
    load_spec,
    parse_spec,
)
from .wiring import Wiring, wire

__all__ = [
    "Application", "Host", "Link", "NetworkSpec", "Policy", "SpecError", "Switch", "Tenant",
    "Wiring", "bundled", "load_spec", "parse_spec", "wire",
]
