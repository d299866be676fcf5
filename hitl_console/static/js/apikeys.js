// Admins: the agents' API keys. Create (the key and its webhook secret are shown once, with
// copy buttons, and kept nowhere but this page's memory), rename, revoke, rotate the secret.
import { $, Pager, ago, api, badge, describeError, el, say, when } from "./common.js";

const rows = new Map(); // key id -> row

// --- shown once -------------------------------------------------------------------------------

/** Show a new key and/or webhook secret until "done" (or leaving the page): never stored. */
function showSecret(title, key, secret) {
  $("new-secret-title").textContent = title;
  $("new-key-value").textContent = key || "";
  $("new-key-label").hidden = !key;
  $("new-key-cell").hidden = !key;
  $("new-secret-value").textContent = secret || "";
  $("new-secret").hidden = false;
  $("new-secret").scrollIntoView({ block: "nearest" });
}

function forgetSecret() {
  $("new-key-value").textContent = "";
  $("new-secret-value").textContent = "";
  $("new-secret").hidden = true;
}

async function copy(sourceId, button) {
  const value = $(sourceId).textContent;
  let done = false;
  try {
    await navigator.clipboard.writeText(value);
    done = true;
  } catch {
    // No clipboard API (an insecure origin): select the text so Ctrl+C copies it.
    const range = document.createRange();
    range.selectNodeContents($(sourceId));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
  }
  button.textContent = done ? "Copied" : "Selected: press Ctrl+C";
  button.dataset.copied = done ? "true" : "false";
  setTimeout(() => {
    button.textContent = "Copy";
    delete button.dataset.copied;
  }, 3000);
}

$("copy-key").addEventListener("click", (event) => copy("new-key-value", event.currentTarget));
$("copy-secret").addEventListener("click", (event) => copy("new-secret-value", event.currentTarget));
$("new-secret-done").addEventListener("click", forgetSecret);

// --- the list ---------------------------------------------------------------------------------

function status(k) {
  if (k.revoked_at) return el("span", {}, badge("revoked"), " ", when(k.revoked_at));
  return el("span", {}, badge("active"),
    k.webhook_disabled_at ? el("span", { class: "hint" }, " webhook disabled (410)") : null,
    k.previous_secret_expires_at ? el("span", { class: "hint" }, " old secret signs until ", when(k.previous_secret_expires_at)) : null);
}

function button(label, data, onClick, cls = null) {
  const node = el("button", { type: "button", class: cls, dataset: data }, label);
  node.addEventListener("click", () => onClick(node));
  return node;
}

function row(k) {
  const actions = el("td", { class: "buttons" });
  const tr = el("tr", { dataset: { keyId: k.id, revoked: k.revoked_at ? "true" : "false" } },
    el("td", {}, `#${k.id}`),
    el("td", { dataset: { field: "name" }, class: "wrap" }, k.name),
    el("td", {}, el("code", {}, `${k.prefix}…`)),
    el("td", { dataset: { field: "status" } }, status(k)),
    el("td", {}, ago(k.created_at), k.created_by ? el("span", { class: "hint" }, ` by ${k.created_by}`) : null),
    el("td", {}, k.last_used_at ? ago(k.last_used_at) : "never"),
    actions);
  if (!k.revoked_at) {
    actions.append(
      button("Rename", { rename: k.id }, () => startRename(k, tr)),
      button("Rotate webhook secret", { rotate: k.id }, (b) => confirmThen(b, "Really rotate?", () => rotate(k, b))),
      button("Revoke", { revoke: k.id }, (b) => confirmThen(b, "Revoke? Agents using it stop at once", () => revoke(k, b)), "danger"));
  }
  return tr;
}

/** A second click confirms (no confirm() dialog): the first one asks. */
function confirmThen(node, question, action) {
  if (node.dataset.confirming === "true") {
    action();
    return;
  }
  node.dataset.confirming = "true";
  const label = node.textContent;
  node.textContent = question;
  setTimeout(() => {
    if (!node.isConnected) return;
    node.dataset.confirming = "false";
    node.textContent = label;
  }, 5000);
}

function put(k) {
  const node = row(k);
  const old = rows.get(k.id);
  if (old) old.replaceWith(node);
  else $("keys-body").append(node);
  rows.set(k.id, node);
  $("keys-empty").hidden = rows.size > 0;
}

function show(items, first) {
  if (first) {
    $("keys-body").replaceChildren();
    rows.clear();
  }
  for (const k of items) put(k);
  $("keys-empty").hidden = rows.size > 0;
}

const pager = new Pager("/api/v1/api-keys", $("load-more"), show);

// --- actions ----------------------------------------------------------------------------------

async function act(node, call) {
  say($("keys-error"), "");
  node.disabled = true;
  try {
    return await call();
  } catch (err) {
    say($("keys-error"), describeError(err));
    return null;
  } finally {
    node.disabled = false;
  }
}

function startRename(k, tr) {
  const cell = tr.querySelector('[data-field="name"]');
  const field = el("input", { value: k.name, maxlength: 200, "aria-label": "New name", dataset: { renameInput: k.id } });
  const save = el("button", { type: "submit", dataset: { renameSave: k.id } }, "Save");
  const cancel = el("button", { type: "button" }, "Cancel");
  const editor = el("form", { class: "inline rename" }, field, save, cancel);
  cancel.addEventListener("click", () => put(k));
  editor.addEventListener("submit", async (event) => {
    event.preventDefault();
    const renamed = await act(save, () => api(`/api/v1/api-keys/${k.id}`, { method: "PATCH", json: { name: field.value } }));
    if (renamed) put(renamed);
  });
  cell.replaceChildren(editor);
  field.focus();
}

async function revoke(k, node) {
  const revoked = await act(node, () => api(`/api/v1/api-keys/${k.id}`, { method: "PATCH", json: { revoked: true } }));
  if (revoked) put(revoked);
}

async function rotate(k, node) {
  const result = await act(node, () => api(`/api/v1/api-keys/${k.id}/rotate-webhook-secret`, { method: "POST" }));
  if (!result) return;
  const { webhook_secret: secret, ...info } = result;
  put(info);
  showSecret(`New webhook secret for “${info.name}”`, null, secret);
}

$("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  say($("key-error"), "");
  const submit = $("key-create");
  submit.disabled = true;
  try {
    const { key, webhook_secret: secret, ...info } = await api("/api/v1/api-keys", {
      method: "POST", json: { name: $("key-name").value } });
    put(info);
    showSecret(`New key “${info.name}”`, key, secret);
    event.target.reset();
  } catch (err) {
    say($("key-error"), describeError(err));
  } finally {
    submit.disabled = false;
  }
});

addEventListener("pagehide", forgetSecret);
pager.reset({ limit: 50 }).catch((err) => say($("keys-error"), describeError(err)));
