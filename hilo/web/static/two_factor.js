/* Hilo two-factor sign-in: set it up (scan, confirm with a code, keep the recovery codes) or turn it off. */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("hilo-config").textContent);
  const strings = config.strings || {};

  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": config.csrf },
      body: JSON.stringify(body || {}),
    });
    const data = await response.json().catch(function () { return null; });
    if (response.ok) { return { data: data }; }
    return { error: (data && data.error) || { message: strings["Something went wrong; try again."] } };
  }

  function wire(id, submit) {
    const form = document.getElementById(id);
    if (!form) { return; }
    const error = form.querySelector(".form-error");
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      error.hidden = true;
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const result = await submit(form);
        if (result.error) {
          error.textContent = result.error.message;
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

  wire("two-factor-start", async function () {
    const result = await post("/api/v1/auth/two-factor/setup");
    if (!result.error) { window.location.reload(); }
    return result;
  });

  wire("two-factor-confirm", async function (form) {
    const result = await post("/api/v1/auth/two-factor/confirm", { code: form.code.value });
    if (!result.error) {
      const list = document.querySelector("#recovery-codes .recovery-list");
      result.data.recovery_codes.forEach(function (code) {
        const item = document.createElement("li");
        item.textContent = code;
        list.appendChild(item);
      });
      document.getElementById("two-factor-setup").hidden = true;
      const required = document.getElementById("two-factor-required");
      if (required) { required.hidden = true; }
      document.getElementById("recovery-codes").hidden = false;
    }
    return result;
  });

  wire("two-factor-disable", async function (form) {
    const result = await post("/api/v1/auth/two-factor/disable", { password: form.password.value });
    if (!result.error) { window.location.reload(); }
    return result;
  });
})();
