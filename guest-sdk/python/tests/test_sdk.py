"""Unit tests of the Python SDK and the Python kv-store on the fake host:
`python -m unittest discover -s guest-sdk/python/tests`."""

from __future__ import annotations

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "apps", "kv-store-py"))
sys.path.insert(0, os.path.join(HERE, "..", "example"))

from mero_sdk import (  # noqa: E402
    AppError, CallError, Counter, LwwRegister, UnorderedMap, UnorderedSet, Vector,
    blobs, emit, env, event, init, mutate, private, state, view,
)
from mero_sdk.collections import key_bytes, key_from_bytes  # noqa: E402
from mero_sdk.testing import FakeHost  # noqa: E402


@event
class Added:
    board: str
    item: str


@state(package="boards")
class Boards:
    boards: UnorderedMap[str, Vector[str]]
    tags: UnorderedMap[str, UnorderedSet[str]]
    nested: UnorderedMap[str, UnorderedMap[int, LwwRegister[int]]]
    votes: UnorderedMap[str, Counter]
    title: LwwRegister[str]
    total: Counter

    @init
    def init(title: str = "untitled") -> Boards:
        return Boards(boards=UnorderedMap(), tags=UnorderedMap(), nested=UnorderedMap(),
                      votes=UnorderedMap(), title=LwwRegister(title), total=Counter(5))

    @mutate
    def add(self, board: str, item: str) -> int:
        v = self.boards.entry(board)
        v.push(item)
        self.total.increment()
        emit(Added(board, item))
        return v.len()

    @mutate
    def tag(self, board: str, tag: str) -> bool:
        return self.tags.entry(board).insert(tag)

    @mutate
    def put(self, outer: str, inner: int, value: int) -> None:
        self.nested.entry(outer).insert_value(inner, value)

    @mutate
    def vote(self, board: str, up: bool = True) -> int:
        c = self.votes.entry(board)
        return c.increment(1) if up else c.decrement(1)

    @mutate
    def drop(self, board: str) -> bool:
        return self.boards.remove(board)

    @mutate
    def fail_after_write(self, board: str) -> None:
        self.boards.entry(board).push("lost")
        raise AppError({"kind": "Nope"})

    @mutate
    def remember(self, secret: str) -> None:
        private.set("secret", secret)

    @view
    def secret(self) -> str | None:
        return private.get("secret")

    @view
    def show(self) -> dict:
        return {
            "title": self.title.get(),
            "total": self.total.value(),
            "boards": {k: v.items() for k, v in self.boards.entries()},
            "tags": {k: s.elements() for k, s in self.tags.entries()},
            "nested": {k: m.values() for k, m in self.nested.entries()},
            "votes": {k: c.value() for k, c in self.votes.entries()},
            "now": env.now_millis(),
        }

    @view
    def sneaky_write(self) -> None:
        try:
            self.total.increment()
        except Exception:
            pass  # swallowing it does not help: the call still fails

    def helper(self) -> None:
        """Not marked: not callable."""


class SdkTest(unittest.TestCase):
    def setUp(self) -> None:
        self.host = FakeHost().install()
        self.ctx = self.host.context_of(Boards, {"title": "t"})

    def test_describe_declares_intents_and_a_rust_compatible_schema(self) -> None:
        info = self.ctx.d.describe()
        self.assertEqual(info["package"], "boards")
        methods = dict(info["methods"])
        self.assertTrue(methods["add"])
        self.assertFalse(methods["show"])
        self.assertNotIn("helper", methods)
        self.assertIn(("nested", "UnorderedMap<String,UnorderedMap<i64,LwwRegister<i64>>>"),
                      info["schema"])
        self.assertIn(("total", "Counter"), info["schema"])

    def test_collections_nest_and_persist_across_calls(self) -> None:
        self.assertEqual(self.ctx.call("add", board="b", item="x"), 1)
        self.assertEqual(self.ctx.call("add", board="b", item="y"), 2)
        self.assertTrue(self.ctx.call("tag", board="b", tag="red"))
        self.assertFalse(self.ctx.call("tag", board="b", tag="red"))
        self.ctx.call("put", outer="o", inner=-2, value=1)
        self.ctx.call("put", outer="o", inner=10, value=2)
        self.assertEqual(self.ctx.call("vote", board="b"), 1)
        self.assertEqual(self.ctx.call("vote", board="b", up=False), 0)
        shown = self.ctx.call("show")
        self.assertEqual(shown["title"], "t")
        self.assertEqual(shown["total"], 7)
        self.assertEqual(shown["boards"], {"b": ["x", "y"]})
        self.assertEqual(shown["tags"], {"b": ["red"]})
        self.assertEqual(shown["nested"], {"o": [[-2, 1], [10, 2]]}, "int keys in numeric order")
        self.assertEqual(self.host.events[-1], ("Added", {"board": "b", "item": "y"}))
        self.assertTrue(self.ctx.call("drop", board="b"))
        self.assertEqual(self.ctx.call("show")["boards"], {})

    def test_a_failing_call_changes_nothing_and_emits_nothing(self) -> None:
        n = len(self.host.events)
        with self.assertRaises(CallError) as e:
            self.ctx.call("fail_after_write", board="b")
        self.assertEqual((e.exception.case, e.exception.value), ("failed", '{"kind":"Nope"}'))
        self.assertEqual(self.ctx.call("show")["boards"], {})
        self.assertEqual(len(self.host.events), n)

    def test_a_view_that_writes_fails_even_if_it_swallows_the_error(self) -> None:
        with self.assertRaises(CallError) as e:
            self.ctx.call("sneaky_write")
        self.assertEqual(e.exception.case, "storage")

    def test_private_storage(self) -> None:
        self.assertIsNone(self.ctx.call("secret"))
        self.ctx.call("remember", secret="s")
        self.assertEqual(self.ctx.call("secret"), "s")

    def test_arguments_are_checked_against_the_signature(self) -> None:
        for bad in ['{"board": 1, "item": "x"}', '{"board": "b"}', '{"board": "b", "item": "x", "z": 1}',
                    "[1]", "{"]:
            with self.assertRaises(CallError) as e:
                self.ctx.call_raw("add", bad)
            self.assertEqual(e.exception.case, "invalid-arguments", bad)
        with self.assertRaises(CallError) as e:
            self.ctx.call_raw("helper", "{}")
        self.assertEqual(e.exception.case, "unknown-method")
        self.assertEqual(self.ctx.call_raw("show", "null")[:1], "{")

    def test_keys_round_trip_in_byte_order(self) -> None:
        for k in [-(1 << 63), -1, 0, 1, (1 << 63) - 1]:
            self.assertEqual(key_from_bytes(key_bytes(k), int), k)
        self.assertLess(key_bytes(-5), key_bytes(3))
        self.assertEqual(key_bytes("é"), "é".encode())


@state(package="attachments")
class Attachments:
    file: LwwRegister[str]

    @init
    def init() -> Attachments:
        return Attachments(file=LwwRegister(""))

    @mutate
    def attach(self, blob: str) -> None:
        self.file.set(blob)

    @mutate
    def write(self, text: str) -> str:
        blob = blobs.create(text)
        self.file.set(blob)
        return blob

    @view
    def write_in_view(self) -> str:
        return blobs.create("x")

    @view
    def text(self) -> dict[str, object] | None:
        blob = self.file.get()
        data = blobs.read_all(blob) if blob else None
        return None if data is None else {"size": blobs.size(blob), "text": data.decode()}


class BlobsTest(unittest.TestCase):
    def test_ids_are_base58_as_the_node_writes_them(self) -> None:
        self.assertEqual(blobs.to_base58(bytes(32)), "1" * 32)
        raw = bytes(range(1, 33))
        self.assertEqual(blobs.id_bytes(blobs.to_base58(raw)), raw)
        for bad in ["0OIl", "abc", "", 7]:
            with self.assertRaises(Exception, msg=repr(bad)):
                blobs.id_bytes(bad)  # type: ignore[arg-type]

    def test_reads_and_makes_go_through_the_host(self) -> None:
        host = FakeHost().install()
        ctx = host.context_of(Attachments)
        self.assertIsNone(ctx.call("text"))
        big = b"a" * (blobs.MAX_READ + 10)
        ctx.call("attach", blob=blobs.to_base58(host.put_blob(big)))
        self.assertEqual(ctx.call("text")["size"], len(big))
        made = ctx.call("write", text="hello")
        self.assertEqual(ctx.call("text"), {"size": 5, "text": "hello"})
        self.assertEqual(made, blobs.to_base58(host.put_blob(b"hello")))
        with self.assertRaises(CallError) as e:
            ctx.call("write_in_view")
        self.assertEqual(e.exception.case, "storage")
        ctx.call("attach", blob=blobs.to_base58(bytes([9]) * 32))
        self.assertIsNone(ctx.call("text"))
        ctx.call("attach", blob="not base58!")
        with self.assertRaises(CallError):
            ctx.call("text")


class EnvTest(unittest.TestCase):
    def test_chain_identities_are_the_hosts(self) -> None:
        host = FakeHost().install()
        self.assertEqual(env.chain_identities(), [])
        host.chain_identities = [
            {"chain": "ethereum", "account": "0xAb", "verified_on_chain": True}
        ]
        self.assertEqual(
            env.chain_identities(),
            [{"chain": "ethereum", "account": "0xAb", "verified_on_chain": True}],
        )


class KvStoreTest(unittest.TestCase):
    def test_the_python_kv_store_on_the_fake_host(self) -> None:
        import app as kv  # apps/kv-store-py/app.py

        host = FakeHost().install()
        ctx = host.context_of(kv.KvStore)
        self.assertIsNone(ctx.call("set", key="a", value="1"))
        ctx.call("set", key="a", value="2")
        self.assertEqual(ctx.call("get", key="a"), "2")
        self.assertEqual(ctx.call("entries"), {"a": "2"})
        self.assertEqual(host.events, [("Inserted", {"key": "a", "value": "1"}),
                                       ("Updated", {"key": "a", "value": "2"})])
        with self.assertRaises(CallError) as e:
            ctx.call("get_result", key="zz")
        self.assertEqual(e.exception.value, '{"kind":"NotFound","data":"zz"}')
        ctx.call("clear")
        self.assertEqual(host.events[-1], ("Cleared", None))
        self.assertEqual(kv.KvStore.__mero_state__["package"], "kv-store-py")
        self.assertEqual(ctx.d.describe()["schema"],
                         [("items", "UnorderedMap<String,LwwRegister<String>>")])


if __name__ == "__main__":
    unittest.main()
