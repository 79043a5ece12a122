/* Hilo sign-in: posts to the rate-limited API login, then goes to the inbox. */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("hilo-config").textContent);
  const form = document.getElementById("login-form");
  const error = document.getElementById("login-error");
  const strings = config.strings || {};

  // The server sends only a path of this site; anything that would leave it goes to the inbox.
  function destination(next) {
    if (typeof next !== "string" || !/^\/(?![\/\\])[^\s\\\u0000-\u001f\u007f-\u009f]*$/.test(next)) { return "/inbox"; }
    const url = new URL(next, window.location.origin);
    return url.origin === window.location.origin ? url.pathname + url.search + url.hash : "/inbox";
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    error.hidden = true;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const response = await fetch("/api/v1/auth/login", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json", "Accept-Language": config.locale },
        body: JSON.stringify({ email: form.email.value, password: form.password.value }),
      });
      if (response.ok) {
        window.location.assign(destination(config.next));
        return;
      }
      const body = await response.json().catch(function () { return null; });
      error.textContent = (body && body.error && body.error.message) || strings["Something went wrong; try again."];
      error.hidden = false;
      form.password.select();
    } catch (_err) {
      error.textContent = strings["Something went wrong; try again."];
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
})();
