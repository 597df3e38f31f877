"""Roles and capability flags of group members.

Capability masks are absolute: `set_member_capabilities` replaces the whole
mask, so list every capability the member keeps. Bits are upstream's.
"""

from __future__ import annotations

import enum
from typing import Iterable, Union

from .errors import InvalidArgumentError

__all__ = ["Capability", "CapabilitiesLike", "capability_mask", "parse_role"]


class Capability(enum.IntFlag):
    """A member's capability bits (admins pass every check)."""

    NONE = 0
    CAN_CREATE_CONTEXT = 1 << 0
    CAN_INVITE_MEMBERS = 1 << 1
    CAN_JOIN_OPEN_SUBGROUPS = 1 << 2
    """Granted to non-admins by default."""
    MANAGE_MEMBERS = 1 << 3
    MANAGE_APPLICATION = 1 << 4
    CAN_CREATE_SUBGROUP = 1 << 5
    CAN_DELETE_SUBGROUP = 1 << 6
    CAN_MANAGE_VISIBILITY = 1 << 7
    CAN_MANAGE_METADATA = 1 << 8

    @classmethod
    def from_name(cls, name: str) -> "Capability":
        """A flag by name: `create-context`, `can_create_context`,
        `CAN_CREATE_CONTEXT` and `manage-members` all work (meroctl's
        spellings included)."""
        key = name.strip().upper().replace("-", "_")
        for candidate in (key, f"CAN_{key}"):
            if candidate in cls.__members__:
                return cls[candidate]
        raise InvalidArgumentError(
            "InvalidCapability",
            f"unknown capability {name!r}: one of "
            + ", ".join(m.lower().replace("_", "-") for m in cls.__members__ if m != "NONE"),
        )

    def names(self) -> "list[str]":
        """The names of the flags set, e.g. `['CAN_CREATE_CONTEXT']`."""
        return [m for m, v in type(self).__members__.items() if v and v & self == v]


CapabilitiesLike = Union[int, Capability, str, Iterable[Union[str, Capability]]]
"""A mask: an int, a `Capability`, a comma-separated string of names, or an
iterable of names or flags."""


def capability_mask(value: CapabilitiesLike) -> int:
    """The integer mask of `value`; `InvalidArgumentError` if it is not one."""
    if isinstance(value, bool):
        raise InvalidArgumentError("InvalidCapability", "a capability mask is not a bool")
    if isinstance(value, int):
        if value < 0 or value >= 1 << 32:
            raise InvalidArgumentError(
                "InvalidCapability", f"capability mask {value} is not a u32"
            )
        return int(value)
    if isinstance(value, str):
        value = [p for p in value.split(",") if p.strip()]
    mask = 0
    for item in value:
        mask |= int(item) if isinstance(item, Capability) else int(Capability.from_name(item))
    return mask


_ROLES = {
    "admin": "Admin",
    "member": "Member",
    "readonly": "ReadOnly",
}


def parse_role(role: str) -> str:
    """The wire name (`Admin`, `Member`, `ReadOnly`) of a role given as
    `admin`, `member`, `read-only`, `read_only` or `ReadOnly`."""
    key = str(role).lower().replace("-", "").replace("_", "")
    if key not in _ROLES:
        raise InvalidArgumentError(
            "InvalidRole",
            f"Invalid role '{role}'. Expected one of: admin, member, read-only",
        )
    return _ROLES[key]
