/* Hilo sign-in: posts to the rate-limited API login, then goes to the inbox. */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("hilo-config").textContent);
  const form = document.getElementById("login-form");
  const error = document.getElementById("login-error");
  const strings = config.strings || {};
  const codeForm = document.getElementById("code-form");
  const codeError = document.getElementById("code-error");

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
        const body = await response.json();
        if (body.two_factor_required) {
          form.hidden = true;
          codeForm.hidden = false;
          codeForm.code.focus();
          return;
        }
        window.location.assign(body.two_factor_setup_required ? "/account/two-factor" : destination(config.next));
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

  // The second step, when the account has two-factor sign-in on.
  codeForm.addEventListener("submit", async function (event) {
    event.preventDefault();
    codeError.hidden = true;
    const button = codeForm.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const response = await fetch("/api/v1/auth/login/two-factor", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json", "Accept-Language": config.locale },
        body: JSON.stringify({ code: codeForm.code.value }),
      });
      const body = await response.json().catch(function () { return null; });
      if (response.ok) {
        window.location.assign(body.two_factor_setup_required ? "/account/two-factor" : destination(config.next));
        return;
      }
      const code = body && body.error && body.error.code;
      if (code === "two_factor_expired" || response.status === 429) {
        // Start again from the password.
        codeForm.hidden = true;
        form.hidden = false;
        error.textContent = body.error.message;
        error.hidden = false;
        return;
      }
      codeError.textContent = (body && body.error && body.error.message) || strings["Something went wrong; try again."];
      codeError.hidden = false;
      codeForm.code.select();
    } catch (_err) {
      codeError.textContent = strings["Something went wrong; try again."];
      codeError.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
})();
