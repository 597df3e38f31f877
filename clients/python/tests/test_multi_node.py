"""Three nodes: the seed's two-node flow (invite, join, join the context,
replication both ways), members, roles and capabilities replicated, a
read-only member's write refused, subgroup admission, removal and leaving,
and events from another node's write."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Dict, Iterator, List

import pytest

from conftest import CONVERGE, Node, app_path, nodes, wait_for
from mero_client import (
    Capability,
    Client,
    ExecutionError,
    ForbiddenError,
    create_async_client,
)


@dataclass
class Net:
    nodes: List[Node]
    clients: List[Client]
    app: str
    ns: str
    ctx: str
    accounts: Dict[str, str]


def join(admin: Client, member: Client, ns: str, role: str = "member") -> str:
    """Invites `member` into `ns` with `role`; its account (hex)."""
    invitation = admin.create_namespace_invitation(ns, role=role)["data"]["invitation"]
    return member.join_namespace(ns, invitation)["data"]["memberAccount"]


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    started = nodes(["node1", "node2", "node3"])
    clients = [n.client() for n in started]
    try:
        c1, c2, c3 = clients
        app = c1.install_dev_application(app_path("kv_store"))["data"]["applicationId"]
        created = c1.create_namespace(app)["data"]
        ns, ctx = created["namespaceId"], created["contextId"]
        c1.execute_function(ctx, "set", {"key": "greeting", "value": "hello from node1"})
        accounts = {
            "node2": join(c1, c2, ns, "member"),
            "node3": join(c1, c3, ns, "read-only"),
        }
        assert c2.join_context(ctx)["data"]["contextId"] == ctx
        assert c3.join_context(ctx)["data"]["contextId"] == ctx
        yield Net(started, clients, app, ns, ctx, accounts)
    finally:
        for c in clients:
            c.close()
        for n in started:
            n.close()


def value_on(client: Client, ctx: str, key: str, want: str):
    def probe():
        return True if client.call(ctx, "get", {"key": key}) == want else None

    return probe


def test_the_seed_two_node_flow_replicates_both_ways(net: Net) -> None:
    c1, c2, _ = net.clients
    # node2 never installed the app: joining fetched it and the state.
    wait_for("node2 to read node1's write", value_on(c2, net.ctx, "greeting", "hello from node1"))
    c2.execute_function(net.ctx, "set", '{"key": "reply", "value": "hi from node2"}')
    wait_for("node1 to read node2's write", value_on(c1, net.ctx, "reply", "hi from node2"))
    assert c1.call(net.ctx, "entries") == {
        "greeting": "hello from node1",
        "reply": "hi from node2",
    }
    # Converged: the same root on every node.
    wait_for(
        "equal roots",
        lambda: True
        if len({c.get_context(net.ctx)["data"]["contextStateHash"] for c in net.clients}) == 1
        else None,
    )
    ctxs = c2.list_contexts()["data"]["contexts"]
    assert [x["applicationId"] for x in ctxs if x["id"] == net.ctx] == [net.app]


def test_members_roles_and_capabilities_replicate(net: Net) -> None:
    c1, c2, _ = net.clients
    node2 = net.accounts["node2"]
    roles = {m["identity"]: m["role"] for m in c1.list_group_members(net.ns)["members"]}
    assert roles[node2] == "Member" and roles[net.accounts["node3"]] == "ReadOnly"
    assert list(roles.values()).count("Admin") == 1

    wanted = Capability.CAN_CREATE_CONTEXT | Capability.CAN_INVITE_MEMBERS
    assert c1.set_member_capabilities(net.ns, node2, ["create-context", "invite-members"]) == {}
    assert c1.get_member_capabilities(net.ns, node2)["data"]["capabilities"] == int(wanted)

    def caps_on_node2():
        caps = c2.get_member_capabilities(net.ns, node2)["data"]["capabilities"]
        return caps if caps == int(wanted) else None

    wait_for("node2 to see its capabilities", caps_on_node2)
    # With create-context, node2 may create a context in the namespace.
    made = wait_for(
        "node2 to create a context",
        lambda: c2.create_context(net.app, net.ns)["data"]["contextId"],
    )
    assert made
    # The mask is absolute: setting one flag clears the others.
    c1.set_member_capabilities(net.ns, node2, Capability.CAN_JOIN_OPEN_SUBGROUPS)
    assert Capability(c1.get_member_capabilities(net.ns, node2)["data"]["capabilities"]) == (
        Capability.CAN_JOIN_OPEN_SUBGROUPS
    )
    c1.set_member_capabilities(net.ns, node2, 0)
    assert c1.get_member_capabilities(net.ns, node2)["data"]["capabilities"] == 0

    # Roles: promote node2, see it on node2, then demote it again.
    assert c1.update_member_role(net.ns, node2, "admin") == {}

    def role_on_node2(want: str):
        def probe():
            members = c2.list_group_members(net.ns)["members"]
            return True if {m["identity"]: m["role"] for m in members}[node2] == want else None

        return probe

    wait_for("node2 to see itself an admin", role_on_node2("Admin"))
    c1.update_member_role(net.ns, node2, "member")
    wait_for("node2 to see itself a member", role_on_node2("Member"))


def test_a_read_only_members_write_is_refused(net: Net) -> None:
    _, _, c3 = net.clients
    wait_for("node3 to read", value_on(c3, net.ctx, "greeting", "hello from node1"))
    with pytest.raises(ExecutionError) as e:
        c3.execute_function(net.ctx, "set", {"key": "intruder", "value": "x"})
    assert e.value.error_type in ("Unauthorized", "FunctionCallError"), e.value
    assert e.value.kind, e.value.body
    assert c3.call(net.ctx, "get", {"key": "intruder"}) is None
    # A member may not change members.
    _, c2, _ = net.clients
    with pytest.raises(ForbiddenError):
        c2.set_member_capabilities(net.ns, net.accounts["node3"], 1)


def test_a_restricted_subgroup_admits_members_one_by_one(net: Net) -> None:
    c1, c2, _ = net.clients
    secret = c1.create_group_in_namespace(net.ns, "secret", visibility="restricted")["data"][
        "groupId"
    ]
    inner = c1.create_context(net.app, secret)["data"]["contextId"]
    c1.execute_function(inner, "set", {"key": "secret", "value": "42"})
    assert c1.add_group_members(secret, [{"identity": net.accounts["node2"], "role": "member"}]) == {}
    wait_for(
        "node2 to see the subgroup's context",
        lambda: True
        if inner in [c["contextId"] for c in c2.list_group_contexts(secret)["data"]]
        else None,
    )
    wait_for("node2 to join the subgroup's context", lambda: c2.join_context(inner))
    wait_for("node2 to read the subgroup's state", value_on(c2, inner, "secret", "42"))


def test_removal_and_leaving(net: Net) -> None:
    c1, c2, c3 = net.clients
    ns2 = c1.create_namespace(net.app)["data"]["namespaceId"]
    a2 = join(c1, c2, ns2)
    a3 = join(c1, c3, ns2)

    def members() -> set:
        return {m["identity"] for m in c1.list_group_members(ns2)["members"]}

    wait_for("both to be members", lambda: True if {a2, a3} <= members() else None)
    assert c1.remove_group_members(ns2, f'["{a3}"]') == {}
    assert a3 not in members()
    c2.leave_namespace(ns2)
    wait_for("node1 to see node2 leave", lambda: True if a2 not in members() else None)


def test_events_of_another_nodes_write_reach_a_websocket(net: Net) -> None:
    c1, _, _ = net.clients

    async def flow() -> None:
        async with create_async_client(net.nodes[1].connection()) as c2:
            async with c2.subscribe_ws(context_ids=[net.ctx]) as events:
                c1.execute_function(net.ctx, "set", {"key": "pushed", "value": "over ws"})

                async def first_inserted():
                    async for e in events:
                        if e.type == "ExecutionEvent" and e.data.get("data", {}).get("key") == "pushed":
                            return e

                event = await asyncio.wait_for(first_inserted(), CONVERGE)
                assert event.context_id == net.ctx
                assert event.data["kind"] in ("Inserted", "Updated")

    asyncio.run(flow())


def test_an_invitation_bound_to_an_ethereum_account(net: Net) -> None:
    """`chain_accounts` binds an invitation to an account: the joiner signs
    its own node's chain challenge with the account's key (eth-account, as
    a wallet's `personal_sign`) and joins with the signature; no proof or
    another key's is refused and the joiner stays out."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    c1, c2 = net.clients[0], net.clients[1]
    ns = c1.create_namespace(net.app)["data"]["namespaceId"]
    wallet, other = Account.create(), Account.create()
    invitation = c1.create_namespace_invitation(
        ns, chain_accounts=[f"ethereum:{wallet.address.lower()}"]
    )["data"]["invitation"]
    assert invitation["conditions"] == [
        {"kind": "chainAccount", "chain": "ethereum", "account": wallet.address}
    ]

    with pytest.raises(ForbiddenError) as e:
        c2.join_namespace(ns, invitation)
    assert e.value.error_type == "ChainProofRequired"

    # The joining node's challenge: it names node2's key, not node1's.
    challenge = c2.get_chain_challenge(ns, "ethereum", wallet.address)["data"]
    assert challenge["member"] == net.accounts["node2"]

    def sign(key: Account) -> str:
        signed = key.sign_message(encode_defunct(text=challenge["message"]))
        return "0x" + bytes(signed.signature).hex()

    with pytest.raises(ForbiddenError) as e:
        c2.join_namespace(ns, invitation, chain_proofs=[{"signature": sign(other)}])
    assert e.value.error_type == "ChainProofForged"
    assert [m["identity"] for m in c1.list_group_members(ns)["members"]] == [
        c1.list_group_members(ns)["members"][0]["identity"]
    ]

    joined = c2.join_namespace(ns, invitation, chain_proofs=[{"signature": sign(wallet)}])
    assert joined["data"]["memberAccount"] == net.accounts["node2"]
    # The proof is the member's chain identity, on the admitting node too.
    listed = c1.list_chain_identities(ns)["data"]["identities"]
    assert [(i["member"], i["account"]) for i in listed] == [
        (net.accounts["node2"], wallet.address)
    ]
