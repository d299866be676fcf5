// The login form: POST JSON to /api/v1/auth/login; the server sets the cookies.
import { $, api, describeError, say } from "./common.js";

const form = $("login-form");
const error = $("login-error");

/** Only a path on this console (never //host or a scheme): no open redirect. */
function safeNext(value) {
  return /^\/(?![/\\])/.test(value || "") ? value : "/";
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  say(error, "");
  const button = $("login-submit");
  button.disabled = true;
  try {
    await api("/api/v1/auth/login", {
      method: "POST",
      json: { email: $("login-email").value, password: $("login-password").value },
    });
    location.assign(safeNext(form.dataset.next));
  } catch (err) {
    say(error, describeError(err));
  } finally {
    button.disabled = false;
  }
});
