"""The dashboard in headless Chromium against two real nodes: every page
loads; sign-in with the node's login flow; install from a file; create a
namespace and a context; a call from the method form and its event live
in the event stream, then resumed after a disconnect; the state browser;
the second node joins with a copied invitation; a role changed on node1
is seen on node2's dashboard; capabilities and removal; a migration
triggered and followed per descendant group and per member.

The tests of this module run in order and build on each other (one story
of an operator's session); screenshots of each page go to the artifact
directory."""

from __future__ import annotations

import json
import re
from typing import Dict

import httpx
from playwright.sync_api import expect

from conftest import Dashboard, Node, app_path, wait_for

# What the story creates, for the tests after.
STORY: Dict[str, str] = {}


def test_without_a_token_the_page_asks_to_sign_in_and_holds_no_data(node1: Node, dashboard: Dashboard) -> None:
    r = httpx.get(f"{node1.url}/admin-dashboard", follow_redirects=False, trust_env=False)
    assert r.status_code == 308 and r.headers["location"] == "/admin-dashboard/"
    r = httpx.get(f"{node1.url}/admin-dashboard/", trust_env=False)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert node1.token not in r.text
    for asset in ("app.js", "app.css"):
        a = httpx.get(f"{node1.url}/admin-dashboard/{asset}", trust_env=False)
        assert a.status_code == 200 and a.headers["etag"]
        assert node1.token not in a.text
    assert httpx.get(f"{node1.url}/admin-dashboard/nope.js", trust_env=False).status_code == 404
    # What the page would show needs a token.
    assert httpx.get(f"{node1.url}/admin-api/node-info", trust_env=False).status_code == 401

    page = dashboard.context().new_page()
    page.goto(f"{node1.url}/admin-dashboard/")
    expect(page.locator("section.signin h1")).to_have_text("Sign in to this node")
    dashboard.shot(page, "sign-in")


def test_the_login_flow_signs_in_and_shows_the_node(node1: Node, dashboard: Dashboard) -> None:
    page = dashboard.context().new_page()
    page.goto(f"{node1.url}/admin-dashboard/#/node")
    page.click("#login")
    page.wait_for_url(re.compile(r".*/auth/login\?.*"))
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice-password")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/admin-dashboard/#/node$"))
    assert "access_token" not in page.url, "the tokens leave the URL"
    expect(page.locator("#version")).not_to_be_empty()
    info = node1.api("GET", "/admin-api/node-info")["data"]
    # Nothing fell behind: no commit's events were missed.
    assert info["missedEventCommits"] == 0
    expect(page.locator("#version")).to_have_text(info["version"])
    expect(page.locator("#node-info")).to_contain_text(info["peerId"][:10])
    expect(page.locator("#store-size")).to_contain_text("B")
    expect(page.locator("#listen-addrs")).to_contain_text(f"/tcp/{node1.swarm_port}")
    expect(page.locator("#uptime")).to_contain_text("s")
    token = page.evaluate("sessionStorage.getItem('mero.dashboard.access')")
    assert token and token != node1.token, "the login's own token, in the tab only"
    assert page.evaluate("localStorage.length") == 0
    dashboard.shot(page, "node")


def test_an_application_is_installed_from_a_file(node1: Node, dashboard: Dashboard) -> None:
    page = dashboard.open(node1, "applications")
    expect(page.locator("#apps")).to_contain_text("No application installed")
    page.set_input_files("#install-file", app_path("kv_store"))
    page.click("#install")
    expect(page.locator("#install-status .notice.ok")).to_contain_text("Installed kv_store.wasm as")
    expect(page.locator("#apps-table")).to_contain_text("kv-store")
    apps = node1.api("GET", "/admin-api/applications")["data"]["apps"]
    assert len(apps) == 1 and apps[0]["source"] == "upload"
    STORY["app"] = apps[0]["id"]
    dashboard.shot(page, "applications")


def test_a_namespace_and_a_context_are_created(node1: Node, dashboard: Dashboard) -> None:
    page = dashboard.open(node1, "groups")
    page.fill("#new-namespace-name", "team")
    page.click("#create-namespace")
    page.wait_for_url(re.compile(r".*#/groups/[0-9a-f]{64}$"))
    ns = page.url.rsplit("/", 1)[1]
    STORY["ns"] = ns
    expect(page.locator("#members")).to_contain_text("this node")
    expect(page.locator(f'#group-tree a[data-group="{ns}"]')).to_be_visible()

    page = dashboard.open(node1, "contexts")
    expect(page.locator("#contexts-table tbody tr")).to_have_count(1)
    page.select_option("#new-context-group", ns)
    page.fill("#new-context-name", "board")
    page.click("#create-context")
    expect(page.locator("#create-status .notice.ok")).to_contain_text("Created context")
    expect(page.locator("#contexts-table tbody tr")).to_have_count(2)
    created = page.locator("#create-status").inner_text().rsplit(" ", 1)[1]
    STORY["ctx"] = created
    expect(page.locator(f'#contexts-table a[data-context="{created}"]')).to_contain_text("board")
    dashboard.shot(page, "contexts")


def test_a_call_from_the_method_form_and_its_event_arrive_live(node1: Node, dashboard: Dashboard) -> None:
    ctx = STORY["ctx"]
    events = dashboard.open(node1, f"events/{ctx}")
    expect(events.locator("#stream-status")).to_have_text("live")

    page = dashboard.open(node1, f"contexts/{ctx}")
    expect(page.locator("#root-hash")).not_to_be_empty()
    expect(page.locator("#dag-heads li")).to_have_count(1)
    expect(page.locator("#context-members li")).to_have_count(1)
    expect(page.locator("#sync-status")).not_to_be_empty()
    # The form is built from the app's methods, views marked. The
    # expectations wait for it; the count alone would not.
    expect(page.locator('#call-method option[value="get"]')).to_contain_text("view")
    expect(page.locator('#call-method option[value="set"]')).to_contain_text("mutating")
    options = page.locator("#call-method option")
    assert options.count() > 5
    page.select_option("#call-method", "set")
    expect(page.locator("#call-intent")).to_contain_text("mutating")
    page.fill("#call-args", json.dumps({"key": "greeting", "value": "hello from the dashboard"}))
    page.click("#call-run")
    expect(page.locator("#call-output")).to_have_text("null")

    # The event stream, open in the other tab, receives it as it happens.
    log = events.locator("#event-log")
    expect(log.locator('li[data-type="StateMutation"]')).to_have_count(1)
    expect(log.locator('li[data-type="ExecutionEvent"]')).to_contain_text("hello from the dashboard")
    dashboard.shot(events, "events")

    page.select_option("#call-method", "get")
    expect(page.locator("#call-intent")).to_contain_text("view")
    page.fill("#call-args", json.dumps({"key": "greeting"}))
    page.click("#call-run")
    expect(page.locator("#call-output")).to_have_text('"hello from the dashboard"')

    # The state browser: the field, then its entry.
    expect(page.locator("#state-fields")).to_contain_text("items")
    page.click('#state-fields button[data-field="items"]')
    expect(page.locator("#state-entries")).to_contain_text("greeting")
    expect(page.locator("#state-entries")).to_contain_text("hello from the dashboard")
    expect(page.locator("#private-size")).to_contain_text("sizes only")
    dashboard.shot(page, "context")
    # The events tab stays open for the resume test.
    dashboard.events_tab = events


def test_the_event_stream_resumes_after_a_disconnect(node1: Node, dashboard: Dashboard) -> None:
    events = dashboard.events_tab
    assert events is not None, "the call test opened it"
    ctx = STORY["ctx"]
    events.click("#disconnect")
    expect(events.locator("#stream-status")).to_have_text("stopped")
    node1.execute(ctx, "set", {"key": "while-away", "value": "missed"})
    expect(events.locator('#event-log li[data-type="ExecutionEvent"]')).to_have_count(1)
    events.click("#connect")
    expect(events.locator("#stream-status")).to_contain_text("resumed after")
    expect(events.locator('#event-log li[data-type="ExecutionEvent"]').first).to_contain_text("missed")
    expect(events.locator('#event-log li[data-type="ExecutionEvent"]')).to_have_count(2)

    # A type filter: only ExecutionEvents (an app kind works too).
    events.click("#disconnect")
    events.click("#clear")
    events.uncheck("#resume")
    events.check('#event-types input[value="StateMutation"]')
    events.click("#connect")
    expect(events.locator("#stream-status")).to_have_text("live")
    node1.execute(ctx, "set", {"key": "filtered", "value": "x"})
    expect(events.locator('#event-log li[data-type="StateMutation"]')).to_have_count(1)
    expect(events.locator('#event-log li[data-type="ExecutionEvent"]')).to_have_count(0)


def test_the_state_browser_pages_through_a_collection(node1: Node, dashboard: Dashboard) -> None:
    ctx = STORY["ctx"]
    for i in range(25):
        node1.execute(ctx, "set", {"key": f"page-{i:02}", "value": str(i)})
    total = len(node1.execute(ctx, "entries", {}))
    assert total > 20
    page = dashboard.open(node1, f"contexts/{ctx}")
    expect(page.locator('#state-fields tr', has_text="items")).to_contain_text(str(total))
    page.click('#state-fields button[data-field="items"]')
    rows = page.locator("#state-entries tbody tr")
    expect(rows).to_have_count(20)
    expect(page.locator("#state-prev")).to_be_disabled()
    first = rows.first.locator("td").nth(1).inner_text()
    page.click("#state-next")
    expect(rows).to_have_count(total - 20)
    expect(page.locator("#state-next")).to_be_disabled()
    page.click("#state-prev")
    expect(rows).to_have_count(20)
    expect(rows.first.locator("td").nth(1)).to_have_text(first)
    dashboard.shot(page, "state")


def test_the_second_node_joins_with_a_copied_invitation(node1: Node, node2: Node, dashboard: Dashboard) -> None:
    ns = STORY["ns"]
    page = dashboard.open(node1, f"groups/{ns}")
    page.select_option("#invite-role", "member")
    page.click("#invite")
    expect(page.locator("#invite-status .notice.ok")).to_be_visible()
    page.click("#copy-invitation")
    expect(page.locator("#invite-status")).to_contain_text("Copied")
    invitation = page.evaluate("navigator.clipboard.readText()")
    assert json.loads(invitation)["invitation"]["invitation"]["invited_role"] in (1, "Member", "member")

    other = dashboard.open(node2, "groups")
    other.fill("#join-invitation", invitation)
    other.click("#join")
    other.wait_for_url(re.compile(rf".*#/groups/{ns}$"))
    expect(other.locator("#members tbody tr")).to_have_count(2)
    # node2 follows the namespace's contexts on its own.
    wait_for(
        "node2 to hold the context",
        lambda: True
        if any(c["id"] == STORY["ctx"] for c in node2.api("GET", "/admin-api/contexts")["data"]["contexts"])
        else None,
    )
    peers = dashboard.open(node2, "node")
    expect(peers.locator("#peers li")).to_have_count(1)
    dashboard.shot(other, "groups-node2")


def test_a_role_changed_on_node1_is_seen_on_node2(node1: Node, node2: Node, dashboard: Dashboard) -> None:
    ns = STORY["ns"]
    member = node2.api("GET", "/admin-api/identity")["data"]["accountId"]
    page = dashboard.open(node1, f"groups/{ns}")
    row = page.locator("#members tbody tr", has=page.locator(f'code[data-full="{member}"]'))
    expect(row.locator(".member-role")).to_have_text("Member")
    row.locator("select.role").select_option("ReadOnly")
    row.locator("button.set-role").click()
    expect(page.locator("#member-status .notice.ok")).to_contain_text("ReadOnly")
    row = page.locator("#members tbody tr", has=page.locator(f'code[data-full="{member}"]'))
    expect(row.locator(".member-role")).to_have_text("ReadOnly")
    dashboard.shot(page, "groups")

    other = dashboard.open(node2, f"groups/{ns}")

    def seen() -> bool | None:
        other.reload()
        other.wait_for_selector("#members tbody tr")
        r = other.locator("#members tbody tr", has=other.locator(f'code[data-full="{member}"]'))
        return True if r.locator(".member-role").inner_text() == "ReadOnly" else None

    wait_for("node2's dashboard to show its new role", seen, timeout=60)

    # Capabilities: grant one more, see the mask.
    row = page.locator("#members tbody tr", has=page.locator(f'code[data-full="{member}"]'))
    row.locator('.caps input[value="2"]').check()
    row.locator("button.set-caps").click()
    expect(page.locator("#member-status .notice.ok")).to_contain_text("Capabilities")
    caps = node1.api("GET", f"/admin-api/groups/{ns}/members/{member}/capabilities")["data"]["capabilities"]
    assert caps & 2


def test_a_migration_is_triggered_and_followed(node1: Node, dashboard: Dashboard) -> None:
    v1 = node1.install("migration_suite_v1")
    v2 = node1.install("migration_suite_v2_add_field")
    created = node1.api("POST", "/admin-api/namespaces", {"applicationId": v1, "name": "versioned"})["data"]
    ns, ctx = created["namespaceId"], created["contextId"]
    node1.execute(ctx, "set_item", {"key": "k1", "value": "v1-value"})
    sub = node1.api("POST", f"/admin-api/namespaces/{ns}/groups", {"name": "child"})["data"]["groupId"]
    node1.api("POST", "/admin-api/contexts", {"applicationId": v1, "groupId": sub, "initializationParams": []})

    page = dashboard.open(node1, f"migrations/{ns}")
    expect(page.locator("#no-upgrade")).to_be_visible()
    page.select_option("#upgrade-target", v2)
    page.check("#upgrade-cascade")
    page.click("#upgrade")
    expect(page.locator("#migration-answer .notice.ok")).to_be_visible()
    rows = page.locator("#cascade-status tbody tr")
    expect(rows).to_have_count(2, timeout=60_000)
    for i in range(2):
        expect(rows.nth(i)).to_contain_text("completed", timeout=60_000)
        bar = rows.nth(i).locator(".progress")
        expect(bar).to_have_attribute("data-done", bar.get_attribute("data-total") or "1")
    expect(page.locator("#migration-members tbody tr")).to_have_count(1)
    expect(page.locator("#migration-members")).to_contain_text("migrated", timeout=60_000)
    dashboard.shot(page, "migrations")
    # Everything committed: the abort is refused, with the node's reason.
    page.on("dialog", lambda d: d.accept())
    page.click("#abort")
    expect(page.locator("#migration-answer")).to_contain_text("Abort")
    assert node1.execute(ctx, "get_item", {"key": "k1"}) == "v1-value"


def test_an_authored_entry_shows_its_owner(node1: Node, dashboard: Dashboard) -> None:
    app = node1.install("scenario_authored_map_v1")
    created = node1.api("POST", "/admin-api/namespaces", {"applicationId": app, "name": "authored"})["data"]
    ctx = created["contextId"]
    node1.execute(ctx, "put_entry", {"key": "k1", "value": "mine"})
    owner = node1.execute(ctx, "owner_of", {"key": "k1"})
    page = dashboard.open(node1, f"contexts/{ctx}")
    page.click('#state-fields button[data-field="entries"]')
    row = page.locator("#state-entries tbody tr", has_text="k1")
    expect(row).to_contain_text("authored")
    expect(row).to_contain_text("mine")
    expect(row).to_contain_text(f"owner {owner[:8]}")


def test_a_member_is_removed(node1: Node, node2: Node, dashboard: Dashboard) -> None:
    ns = STORY["ns"]
    member = node2.api("GET", "/admin-api/identity")["data"]["accountId"]
    page = dashboard.open(node1, f"groups/{ns}")
    page.on("dialog", lambda d: d.accept())
    row = page.locator("#members tbody tr", has=page.locator(f'code[data-full="{member}"]'))
    row.locator("button.remove-member").click()
    expect(page.locator("#member-status .notice.ok")).to_contain_text("Removed")
    expect(page.locator("#members tbody tr")).to_have_count(1)


def test_no_page_logged_an_error(dashboard: Dashboard) -> None:
    real = [e for e in dashboard.errors if "401" not in e and "409" not in e]
    assert not real, real

