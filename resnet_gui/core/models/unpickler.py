"""The pickle inside a PyTorch checkpoint (`data.pkl`), read with no torch: a restricted unpickler.

The opcodes of protocols 2 (torch.save's) to 5 that build plain data; globals are resolved, and calls (REDUCE)
checked, by pickle_globals.py's table, so no code from a file can run and tensors come back as inert TensorRef
records. Whatever torch's own weights-only unpickler refuses is refused with its wording ("Unsupported operand
149", "Can only append to lists, ...").

Budgets, beyond which TooLarge: MAX_OPS units of work (an opcode, or an element a call copies or walks), MAX_MARKS
open marks, MAX_DEPTH levels of nesting in the result, and no value that contains itself: printing or comparing
such data later would exhaust the stack. Dictionary keys and set members must be plain values (hashing a deeply
nested tuple crashes Python itself; torch's unpickler lets a 3 MB file do that to the app).
"""
from __future__ import annotations

from collections import Counter, OrderedDict
from struct import unpack_from
from typing import Any

from ..jsonsafe import TooLarge
from .pickle_globals import STORAGE_TYPES, Marker, Refused, parameter, plain_key, resolve_global

MAX_OPS = 4_000_000      # a ResNet-152 with metadata: ~40,000; jsonsafe allows 2,000,000 metadata values
MAX_MARKS = 200          # nested tuples/lists/dicts being built at once
MAX_DEPTH = 64           # levels of nesting in what a pickle builds (metadata: 32, jsonsafe.MAX_DEPTH)
_SIZED = (str, bytes, bytearray, list, tuple, dict, set)


def check_nesting(root: Any, max_depth: int = MAX_DEPTH) -> None:
    """TooLarge when `root` nests deeper than max_depth or holds itself: printing or comparing such data later
    would exhaust the stack. Iterative, each container visited once (shared ones are not walked again)."""
    heights: dict[int, int] = {}
    path: set[int] = set()
    stack: list[list[Any]] = []

    def enter(node: Any) -> None:
        if len(stack) >= max_depth:
            raise TooLarge(f"nested more than {max_depth} levels deep")
        path.add(id(node))
        stack.append([node, iter(node.values() if isinstance(node, dict) else node), 0])

    if type(root) in (list, tuple, dict, OrderedDict, Counter):
        enter(root)
    while stack:
        frame = stack[-1]
        for child in frame[1]:
            if type(child) not in (list, tuple, dict, OrderedDict, Counter):
                continue
            if id(child) in path:
                raise TooLarge("a value that contains itself")
            height = heights.get(id(child))
            if height is None:
                enter(child)
                break
            if len(stack) + height > max_depth:
                raise TooLarge(f"nested more than {max_depth} levels deep")
            frame[2] = max(frame[2], height)
        else:
            stack.pop()
            path.discard(id(frame[0]))
            heights[id(frame[0])] = frame[2] + 1
            if stack:
                stack[-1][2] = max(stack[-1][2], frame[2] + 1)


class Unpickler:
    """One pickle in `data` (bytes, or an mmap) from offset `pos`. `storage(dtype, fields)` returns the StorageRef
    of a persistent id ("storage", <storage type>, *fields): pth_read.py checks the data it names exists and holds
    what the id claims. After load(), `pos` is where the pickle ended."""

    def __init__(self, data, storage, pos: int = 0):
        self.data, self.pos, self.storage = data, pos, storage
        self.stack: list[Any] = []
        self.marks: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.ops = 0

    def load(self) -> Any:
        data, ops = self.data, _OPS
        while True:
            if self.pos >= len(data):
                raise EOFError("the pickle ends before its STOP")
            code = data[self.pos]
            self.pos += 1
            self._charge(1)
            handler = ops.get(code)
            if handler is None:
                raise Refused(f"Unsupported operand {code}")
            if handler(self) is _STOP:
                result = self.stack.pop()
                check_nesting(result)
                return result

    def _charge(self, units: int) -> None:
        self.ops += units
        if self.ops > MAX_OPS:
            raise TooLarge(f"more than {MAX_OPS:,} values")

    def read(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise EOFError("the pickle ends in the middle of a value")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def _unsigned(self, size: int) -> int:
        return int.from_bytes(self.read(size), "little")

    def _push(self, value: Any) -> None:
        self.stack.append(value)

    def _pop_mark(self) -> list[Any]:
        items = self.stack
        self.stack = self.marks.pop()
        return items

    def _mark(self) -> None:
        if len(self.marks) >= MAX_MARKS:
            raise TooLarge(f"nested more than {MAX_MARKS} levels deep")
        self.marks.append(self.stack)
        self.stack = []

    def _tuple(self, n: int) -> None:
        if len(self.stack) < n:
            raise IndexError("pop from empty list")
        items = tuple(self.stack[len(self.stack) - n:])
        del self.stack[len(self.stack) - n:]
        self.stack.append(items)

    def _long(self, size: int) -> None:
        n = self._unsigned(size)
        self._charge(n // 8)  # a LONG4 of millions of digits costs its length
        self.stack.append(int.from_bytes(self.read(n), "little", signed=True))

    def _frame(self) -> None:
        if self._unsigned(8) > len(self.data) - self.pos:
            raise EOFError("a pickle frame runs past the end of the data")

    def _global(self, module: Any, name: Any) -> None:
        if not isinstance(module, str) or not isinstance(name, str):
            raise Refused("Unsupported global: STACK_GLOBAL needs two strings")
        self.stack.append(resolve_global(module, name))

    def _stack_global(self) -> None:
        name = self.stack.pop()
        self._global(self.stack.pop(), name)

    def _line(self) -> str:
        end = self.data.find(b"\n", self.pos, self.pos + 256)  # bounded: names of allowed globals are short
        if end < 0:
            raise Refused("Unsupported global: GLOBAL with a name of more than 255 bytes")
        return str(self.read(end + 1 - self.pos)[:-1], "utf-8")

    def _persistent(self) -> None:
        pid = self.stack.pop()
        head = pid[0] if type(pid) is tuple and pid else None
        if (head.decode("ascii", "replace") if isinstance(head, bytes) else head) != "storage":
            raise Refused(f"Only persistent_load of storage is allowed, but got {type(pid).__name__}")
        kind = pid[1] if len(pid) > 1 else None
        if not (isinstance(kind, Marker) and kind.name in STORAGE_TYPES):
            raise RuntimeError(f"unknown storage type {str(kind)[:80]}")
        self.stack.append(self.storage(kind.value, pid[2:]))

    def _reduce(self) -> None:
        args = self.stack.pop()
        func = self.stack[-1]
        if not isinstance(func, Marker) or not callable(func.value):
            raise Refused(f"Trying to call reduce for unrecognized function {str(func)[:80]}")
        if type(args) is not tuple:
            raise TypeError(f"{func.name} arguments must be a tuple, got {type(args).__name__}")
        self._charge(sum(len(a) for a in args if isinstance(a, _SIZED)))  # what the call copies or walks
        self.stack[-1] = func.value(*args)

    def _new(self) -> None:
        args, cls = self.stack.pop(), self.stack.pop()
        name = cls.name if isinstance(cls, Marker) else ""
        if name == "torch.nn.parameter.Parameter" and type(args) is tuple and args:
            self.stack.append(parameter(*args[:2]))
        elif name in ("collections.OrderedDict", "collections.Counter", "builtins.set") and args == ():
            self.stack.append(cls.value())
        else:
            raise Refused("Can only create new object for nn.Parameter or classes allowlisted via `add_safe_globals` "
                          f"but got {str(cls)[:80]}")

    def _build(self) -> None:
        state, inst = self.stack.pop(), self.stack[-1]
        if type(inst) not in (OrderedDict, Counter):
            raise Refused("Can only build Tensor, Parameter, OrderedDict or types allowlisted via `add_safe_globals`, "
                          f"but got {type(inst)}")
        if not isinstance(state, dict):  # torch sets these attributes (`_metadata`); nothing here needs them
            raise TypeError(f"the state of an OrderedDict must be a dict, got {type(state).__name__}")

    def _set_item(self) -> None:
        value = self.stack.pop()
        self._set_items([self.stack.pop(), value], "SETITEM")

    def _set_items(self, items: list[Any], opcode: str) -> None:
        target = self.stack[-1]
        if type(target) not in (dict, OrderedDict, Counter):
            raise Refused(f"Can only {opcode} for dict, collections.OrderedDict, collections.Counter, but got "
                          f"{type(target)}")
        if len(items) % 2:
            raise IndexError("SETITEMS needs key and value pairs")
        for i in range(0, len(items), 2):
            target[plain_key(items[i])] = items[i + 1]

    def _append(self, items: list[Any]) -> None:
        if type(self.stack[-1]) is not list:
            raise Refused(f"Can only append to lists, but got {type(self.stack[-1])}")
        self.stack[-1].extend(items)

    def _add_items(self) -> None:
        items = self._pop_mark()
        if type(self.stack[-1]) is not set:
            raise Refused(f"Can only ADDITEMS to sets, but got {type(self.stack[-1])}")
        self.stack[-1].update(plain_key(v) for v in items)


def _put(u: Unpickler, index: int) -> None:
    u.memo[index] = u.stack[-1]


_STOP = object()
_OPS = {  # opcode -> handler; anything else is refused ("Unsupported operand N")
    0x80: lambda u: u.read(1),  # PROTO: any; the opcodes that follow are what is checked
    0x95: lambda u: u._frame(),
    ord("."): lambda u: _STOP,
    ord("("): lambda u: u._mark(),
    ord("t"): lambda u: u._push(tuple(u._pop_mark())),  # not u.stack.append: _pop_mark replaces u.stack
    ord(")"): lambda u: u._push(()),
    0x85: lambda u: u._tuple(1), 0x86: lambda u: u._tuple(2), 0x87: lambda u: u._tuple(3),
    ord("]"): lambda u: u._push([]),
    ord("}"): lambda u: u._push({}),
    0x8F: lambda u: u._push(set()),
    ord("a"): lambda u: u._append([u.stack.pop()]),
    ord("e"): lambda u: u._append(u._pop_mark()),
    ord("s"): lambda u: u._set_item(),
    ord("u"): lambda u: u._set_items(u._pop_mark(), "SETITEMS"),
    0x90: lambda u: u._add_items(),
    ord("N"): lambda u: u._push(None),
    0x88: lambda u: u._push(True),
    0x89: lambda u: u._push(False),
    ord("J"): lambda u: u._push(unpack_from("<i", u.read(4))[0]),
    ord("K"): lambda u: u._push(u._unsigned(1)),
    ord("M"): lambda u: u._push(u._unsigned(2)),
    0x8A: lambda u: u._long(1),
    0x8B: lambda u: u._long(4),
    ord("G"): lambda u: u._push(unpack_from(">d", u.read(8))[0]),
    ord("X"): lambda u: u._push(str(u.read(u._unsigned(4)), "utf-8", "surrogatepass")),
    0x8C: lambda u: u._push(str(u.read(u._unsigned(1)), "utf-8", "surrogatepass")),
    0x8D: lambda u: u._push(str(u.read(u._unsigned(8)), "utf-8", "surrogatepass")),
    ord("U"): lambda u: u._push(str(u.read(u._unsigned(1)), "utf-8")),  # SHORT_BINSTRING, decoded as torch does
    ord("C"): lambda u: u._push(u.read(u._unsigned(1))),
    ord("B"): lambda u: u._push(u.read(u._unsigned(4))),
    0x8E: lambda u: u._push(u.read(u._unsigned(8))),
    ord("q"): lambda u: _put(u, u._unsigned(1)),
    ord("r"): lambda u: _put(u, u._unsigned(4)),
    0x94: lambda u: _put(u, len(u.memo)),
    ord("h"): lambda u: u._push(u.memo[u._unsigned(1)]),
    ord("j"): lambda u: u._push(u.memo[u._unsigned(4)]),
    ord("c"): lambda u: u._global(u._line(), u._line()),
    0x93: lambda u: u._stack_global(),
    ord("Q"): lambda u: u._persistent(),
    ord("R"): lambda u: u._reduce(),
    0x81: lambda u: u._new(),
    ord("b"): lambda u: u._build(),
}
