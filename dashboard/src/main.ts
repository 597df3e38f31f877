// The node dashboard: signs in with the node's own login flow (or a pasted
// token), then shows one page at a time, chosen by the URL's fragment.
import "./style.css";
import { ApiError, Data, forgetTokens, get, setTokens, token, whenUnauthorized } from "./api";
import { fill, h, notice } from "./dom";
import { applicationsPage } from "./pages/applications";
import { contextsPage } from "./pages/contexts";
import { eventsPage } from "./pages/events";
import { groupsPage } from "./pages/groups";
import { migrationsPage } from "./pages/migrations";
import { nodePage } from "./pages/node";

/** A page draws into `root` from `args` (the fragment's path after its
 * name) and returns what to undo when another page replaces it. */
export type Page = (root: HTMLElement, args: string[]) => void | (() => void);

const PAGES: [string, string, Page][] = [
  ["node", "Node", nodePage],
  ["applications", "Applications", applicationsPage],
  ["groups", "Namespaces", groupsPage],
  ["contexts", "Contexts", contextsPage],
  ["events", "Events", eventsPage],
  ["migrations", "Migrations", migrationsPage],
];

const RETURN = "mero.dashboard.return";
const app = document.getElementById("app") as HTMLElement;
let cleanup: (() => void) | void;

/** Tokens the login flow put in the fragment move to sessionStorage, and
 * the fragment goes back to the page the user was on. */
function takeTokensFromFragment(): void {
  const frag = location.hash.slice(1);
  if (!frag.includes("access_token=")) return;
  const p = new URLSearchParams(frag);
  const access = p.get("access_token");
  if (access) setTokens(access, p.get("refresh_token"));
  const back = sessionStorage.getItem(RETURN) ?? "#/node";
  sessionStorage.removeItem(RETURN);
  history.replaceState(null, "", location.pathname + location.search + back);
}

function signIn(why?: string): void {
  if (cleanup) cleanup();
  cleanup = undefined;
  const pasted = h("textarea", { id: "token-input", rows: 3, placeholder: "eyJhbGciOi…", "aria-label": "Access token" });
  const loginUrl = `/auth/login?callback-url=${encodeURIComponent(location.origin + location.pathname)}&permissions=admin`;
  fill(
    app,
    h(
      "section",
      { class: "signin" },
      h("h1", null, "Sign in to this node"),
      why ? notice("error", `The node did not accept this tab's token (${why}).`) : null,
      h("p", null, "The dashboard reads the node's admin API with a token, as every client does. This tab keeps it in session storage only."),
      h(
        "button",
        {
          id: "login",
          class: "primary",
          onclick: () => {
            sessionStorage.setItem(RETURN, location.hash.startsWith("#/") ? location.hash : "#/node");
            location.href = loginUrl;
          },
        },
        "Sign in with a user and password",
      ),
      h("p", { class: "muted" }, "Users are set with ", h("code", null, "merod auth set-password"), "."),
      h("h2", null, "Or use an access token"),
      h(
        "p",
        { class: "muted" },
        "E.g. the node's root credential (",
        h("code", null, "<node>/credential.json"),
        ") or one from ",
        h("code", null, "meroctl token create"),
        ".",
      ),
      pasted,
      h(
        "button",
        {
          id: "use-token",
          onclick: () => {
            const t = pasted.value.trim();
            if (!t) return;
            setTokens(t, null);
            void start();
          },
        },
        "Use this token",
      ),
    ),
  );
}

function frame(identity: string, mode: string): HTMLElement {
  const page = h("main", { id: "page" });
  const nav = h(
    "nav",
    null,
    PAGES.map(([name, label]) => h("a", { href: `#/${name}`, "data-page": name }, label)),
  );
  const out = h(
    "button",
    {
      id: "signout",
      class: "link",
      onclick: () => {
        forgetTokens();
        signIn();
      },
    },
    "Sign out",
  );
  fill(
    app,
    h(
      "header",
      null,
      h("strong", null, "mero"),
      h("span", { class: "muted" }, " node dashboard"),
      h("span", { class: "spacer" }),
      h("code", { class: "id", title: identity }, identity.slice(0, 12) + "…"),
      mode === "proxy" ? h("span", { class: "badge" }, "proxy auth") : out,
    ),
    nav,
    page,
  );
  return page;
}

function route(page: HTMLElement): void {
  const [, name = "node", ...args] = (location.hash || "#/node").slice(1).split("/");
  const found = PAGES.find(([n]) => n === name) ?? PAGES[0];
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.getAttribute("data-page") === found[0]);
  }
  if (cleanup) cleanup();
  page.replaceChildren();
  page.setAttribute("data-page", found[0]);
  document.title = `${found[1]} · mero node dashboard`;
  cleanup = found[2](page, args.map(decodeURIComponent));
}

let routing: (() => void) | null = null;

async function start(): Promise<void> {
  let authed: { status: string; permissions: string[] };
  try {
    authed = (await get<Data<{ status: string; permissions: string[] }>>("/admin-api/is-authed")).data;
  } catch (e) {
    fill(app, notice("error", `The node does not answer: ${(e as Error).message}`));
    return;
  }
  if (authed.status !== "authed") {
    signIn(token() ? "invalid or expired" : undefined);
    return;
  }
  let identity = "";
  let mode = "embedded";
  try {
    const me = await get<Data<{ publicKey: string }>>("/admin-api/identity");
    identity = me.data.publicKey;
    mode = authed.permissions.includes("admin") && !token() ? "proxy" : "embedded";
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
  }
  const page = frame(identity, mode);
  if (routing) window.removeEventListener("hashchange", routing);
  routing = () => route(page);
  window.addEventListener("hashchange", routing);
  if (!location.hash.startsWith("#/")) history.replaceState(null, "", "#/node");
  route(page);
}

whenUnauthorized((why) => {
  if (why === "missing_token" || why === "invalid_token" || why === "token_revoked" || why === "token_expired") {
    forgetTokens();
    signIn(why);
  }
});
takeTokensFromFragment();
void start();
