/* Hilo before sign-in: ask for a password reset link, choose a new password with it, accept an invitation. */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("hilo-config").textContent);
  const strings = config.strings || {};
  const token = config.token;
  if (token) {
    // The link's token stays out of the history and of anything this page loads.
    window.history.replaceState(null, "", window.location.pathname);
  }

  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "Accept-Language": config.locale },
      body: JSON.stringify(body),
    });
    if (response.ok) { return null; }
    const data = await response.json().catch(function () { return null; });
    return (data && data.error) || { message: strings["Something went wrong; try again."] };
  }

  function wire(form, submit) {
    if (!form) { return; }
    const error = form.querySelector(".form-error");
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      error.hidden = true;
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const failure = await submit(form);
        if (failure) {
          error.textContent = failure.message;
          error.hidden = false;
        }
      } catch (_err) {
        error.textContent = strings["Something went wrong; try again."];
        error.hidden = false;
      } finally {
        button.disabled = false;
      }
    });
  }

  wire(document.getElementById("forgot-form"), async function (form) {
    const failure = await post("/api/v1/auth/password-reset", { email: form.email.value });
    if (!failure) {
      form.hidden = true;
      document.getElementById("forgot-sent").hidden = false;
    }
    return failure;
  });

  wire(document.getElementById("reset-form"), async function (form) {
    const failure = await post("/api/v1/auth/password-reset/confirm", { token: token || "", password: form.password.value });
    if (!failure) {
      form.hidden = true;
      document.getElementById("reset-done").hidden = false;
    } else if (failure.code && failure.code.indexOf("reset_token_") === 0) {
      document.getElementById("reset-again").hidden = false;
    }
    return failure;
  });

  wire(document.getElementById("accept-form"), async function (form) {
    const failure = await post("/api/v1/auth/accept-invitation", { token: token || "", password: form.password.value, name: form.name.value });
    if (!failure) { window.location.assign("/inbox"); }
    return failure;
  });
})();
