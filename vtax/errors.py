"""Domain errors carry a stable code (see docs/protocol.md) and a message for people."""

from __future__ import annotations


class DomainError(Exception):
    """A request that the domain refuses; the transport turns it into `{code, message}`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}
