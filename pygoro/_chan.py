"""Directional views of channels: Go's chan<- T and <-chan T.

ch.send_only() and ch.recv_only() return thin views of the same channel.
Using the wrong direction raises TypeError, as Go's compiler would refuse it.
"""

from __future__ import annotations

from typing import Any, Iterator

from . import _core
from ._core import Case, Chan

__all__ = ["SendChan", "RecvChan"]


class SendChan:
    """A send-only view of a Chan (Go's chan<- T): send, send_case, close,
    len, cap."""

    __slots__ = ("_chan",)

    def __init__(self, chan: Chan) -> None:
        if not isinstance(chan, Chan):
            raise TypeError(f"SendChan needs a Chan, not {type(chan).__name__}")
        self._chan = chan

    def send(self, v: Any) -> None:
        self._chan.send(v)

    def send_case(self, v: Any) -> Case:
        return self._chan.send_case(v)

    def close(self) -> None:
        self._chan.close()

    def __len__(self) -> int:
        return len(self._chan)

    @property
    def cap(self) -> int:
        return self._chan.cap

    def recv(self) -> Any:
        raise TypeError("receive from send-only channel")

    def recv_ok(self) -> Any:
        raise TypeError("receive from send-only channel")

    def recv_case(self) -> Case:
        raise TypeError("receive from send-only channel")

    def __iter__(self) -> Iterator[Any]:
        raise TypeError("range over send-only channel")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SendChan) and other._chan is self._chan

    def __hash__(self) -> int:
        return hash(("send", id(self._chan)))

    def __repr__(self) -> str:
        return f"<pygoro.SendChan of {self._chan!r}>"


class RecvChan:
    """A receive-only view of a Chan (Go's <-chan T): recv, recv_ok,
    recv_case, iteration, len, cap. Closing it raises TypeError, as closing
    a receive-only channel does not compile in Go."""

    __slots__ = ("_chan",)

    def __init__(self, chan: Chan) -> None:
        if not isinstance(chan, Chan):
            raise TypeError(f"RecvChan needs a Chan, not {type(chan).__name__}")
        self._chan = chan

    def recv(self) -> Any:
        return self._chan.recv()

    def recv_ok(self) -> tuple[Any, bool]:
        return self._chan.recv_ok()

    def recv_case(self) -> Case:
        return self._chan.recv_case()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._chan)

    def __len__(self) -> int:
        return len(self._chan)

    @property
    def cap(self) -> int:
        return self._chan.cap

    def send(self, v: Any) -> None:
        raise TypeError("send on receive-only channel")

    def send_case(self, v: Any) -> Case:
        raise TypeError("send on receive-only channel")

    def close(self) -> None:
        raise TypeError("close of receive-only channel")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RecvChan) and other._chan is self._chan

    def __hash__(self) -> int:
        return hash(("recv", id(self._chan)))

    def __repr__(self) -> str:
        return f"<pygoro.RecvChan of {self._chan!r}>"


_core._set_view_types(SendChan, RecvChan)
