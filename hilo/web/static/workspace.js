/* Hilo agent workspace: what routing, SLAs and automation add to the inbox page.
 *
 * SLA badges that tick in the browser, the macro menu, "Send later" and the conversation's
 * scheduled replies, the away toggle, and the titles of SLA and scheduled-reply
 * notifications. Changes go through the REST API; app.js hands over websocket events as
 * `hilo:event` DOM events. */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("hilo-config").textContent);
  const strings = config.workspace_strings || {};
  const lang = config.me.locale === "es" ? "es-ES" : "en-GB";
  const KINDS = { first_response: "First response", next_response: "Next response", resolution: "Resolution" };
  const $ = function (selector, root) { return (root || document).querySelector(selector); };
  const $$ = function (selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); };

  function t(msgid, values) {
    let text = strings[msgid] || msgid;
    Object.keys(values || {}).forEach(function (key) { text = text.split("{" + key + "}").join(String(values[key])); });
    return text;
  }

  async function api(method, path, body) {
    const headers = { "Accept": "application/json", "X-CSRF-Token": config.csrf };
    if (body !== undefined) { headers["Content-Type"] = "application/json"; }
    const response = await fetch(path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
    const data = response.status === 204 ? null : await response.json().catch(function () { return null; });
    if (!response.ok) {
      const error = new Error((data && data.error && data.error.message) || response.statusText);
      error.code = data && data.error ? data.error.code : null;
      throw error;
    }
    return data;
  }

  function toast(message, error) {
    const box = $("#toasts");
    if (!box) { return; }
    const item = document.createElement("div");
    item.className = "toast" + (error ? " toast-error" : "");
    item.textContent = message;
    box.appendChild(item);
    setTimeout(function () { item.remove(); }, 6000);
  }

  function conversationId() {
    const conversation = $("#conversation");
    return conversation ? Number(conversation.dataset.id) : null;
  }

  // -- SLA badges: the due time relative to the server's clock, ticking ----------------------

  const relative = new Intl.RelativeTimeFormat(lang, { numeric: "always", style: "short" });
  const stamp = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });

  function relativeText(ms) {
    const size = Math.abs(ms);
    const sign = ms < 0 ? -1 : 1;
    if (size < 60000) { return relative.format(sign * Math.round(size / 1000), "second"); }
    if (size < 3600000) { return relative.format(sign * Math.round(size / 60000), "minute"); }
    if (size < 172800000) { return relative.format(sign * Math.round(size / 3600000), "hour"); }
    return relative.format(sign * Math.round(size / 86400000), "day");
  }

  function tickSla(el) {
    // The page may come from a server whose clock differs from this browser's: count from
    // the server's "now" written into the badge, plus the time since the badge appeared.
    if (!el.dataset.seen) { el.dataset.seen = String(Date.now()); }
    const status = el.dataset.slaStatus;
    const text = $(".sla-text", el);
    let long;
    let short;
    if (status === "paused") {
      long = t("SLA paused while pending");
      short = long;
    } else if (!el.dataset.slaDue) {
      long = t("SLA breached");
      short = long;
    } else {
      const now = Date.parse(el.dataset.now) + (Date.now() - Number(el.dataset.seen));
      const left = Date.parse(el.dataset.slaDue) - now;
      const kind = t(KINDS[el.dataset.slaKind] || "Resolution");
      short = relativeText(left);
      long = t(left < 0 ? "{kind} was due {relative}" : "{kind} due {relative}", { kind: kind, relative: short });
      el.classList.toggle("sla-breached", left <= 0 || status === "breached");
      el.title = long + " · " + stamp.format(new Date(el.dataset.slaDue));
    }
    if (el.classList.contains("sla-long")) {
      text.textContent = long;
    } else {
      text.textContent = short;
      const sr = $(".sla-sr", el);
      if (sr) { sr.textContent = long; }
    }
  }

  function tickAll(root) { $$(".sla[data-sla-status]", root).forEach(tickSla); }

  setInterval(function () { tickAll(document); }, 15000);

  // -- Live: app.js re-renders the header on every event of the open conversation ------------

  function refreshHeader() {
    document.dispatchEvent(new CustomEvent("hilo:refresh", { detail: ["header"] }));
  }

  document.addEventListener("hilo:event", function (event) {
    const data = event.detail || {};
    const type = data.type || "";
    if (type === "agent.presence_changed" && data.agent_id === config.me.id) {
      showAway(data.presence === "away");
    } else if (type.indexOf("scheduled_message.") === 0 && data.conversation_id === conversationId()) {
      loadScheduled();
    } else if (type === "message.created" && data.conversation_id === conversationId()) {
      loadScheduled();
    }
  });

  // -- Notifications: the titles of the kinds this file adds (app.js asks) -------------------

  window.hiloNotificationTitle = function (n) {
    const kind = t(KINDS[n.sla_kind] || "Resolution");
    if (n.kind === "sla_warning") { return t("{kind} due soon", { kind: kind }); }
    if (n.kind === "sla_breached") { return t("{kind} target missed", { kind: kind }); }
    if (n.kind === "scheduled_failed") { return t("A scheduled reply could not be sent"); }
    return null;
  };

  // -- Macros: a keyboard-accessible menu in the conversation header -------------------------

  async function openMacros(button, byKeyboard) {
    const menu = $("#macro-menu");
    if (!menu || menu.hidden) { return; }
    menu.textContent = "";
    let macros = [];
    try {
      macros = await api("GET", "/api/v1/macros");
    } catch (error) {
      toast(error.message, true);
      return;
    }
    if (!macros.length) {
      const empty = document.createElement("p");
      empty.className = "muted small menu-empty";
      empty.textContent = t("No macros yet.");
      menu.appendChild(empty);
      return;
    }
    macros.forEach(function (macro) {
      const item = document.createElement("button");
      item.type = "button";
      item.setAttribute("role", "menuitem");
      item.dataset.macro = String(macro.id);
      item.dataset.name = macro.name;
      item.textContent = macro.name;
      menu.appendChild(item);
    });
    if (byKeyboard) { $("[role=menuitem]", menu).focus(); }
  }

  async function runMacro(item) {
    const id = conversationId();
    const menu = $("#macro-menu");
    if (menu) { menu.hidden = true; }
    const button = $("#macro-button");
    if (button) { button.setAttribute("aria-expanded", "false"); }
    try {
      const result = await api("POST", "/api/v1/macros/" + item.dataset.macro + "/run", { conversation_id: id });
      const skipped = (result.actions || []).filter(function (step) { return step.done === false; });
      if (skipped.length) {
        const steps = skipped.map(function (step) { return step.type + (step.code ? " (" + step.code + ")" : ""); }).join(", ");
        toast(t("Macro {name} applied; some steps were skipped: {steps}.", { name: item.dataset.name, steps: steps }), true);
      } else {
        toast(t("Macro {name} applied.", { name: item.dataset.name }));
      }
      refreshHeader();
    } catch (error) {
      toast(error.message, true);
    }
  }

  function moveInMenu(menu, step, event) {
    const items = $$("[role=menuitem]", menu);
    if (!items.length) { return; }
    const index = items.indexOf(document.activeElement);
    let next = index + step;
    if (step === Infinity) { next = items.length - 1; }
    if (step === -Infinity) { next = 0; }
    items[(next + items.length) % items.length].focus();
    event.preventDefault();
  }

  document.addEventListener("keydown", function (event) {
    const menu = event.target.closest && event.target.closest("[role=menu]");
    const opener = event.target.closest && event.target.closest("[aria-haspopup=menu]");
    if (opener && (event.key === "ArrowDown" || event.key === "Enter" || event.key === " ")) {
      opener.dataset.keyboard = "1";
      if (event.key === "ArrowDown") {
        event.preventDefault();
        opener.click();
      }
      return;
    }
    if (!menu) { return; }
    if (event.key === "ArrowDown") { moveInMenu(menu, 1, event); }
    if (event.key === "ArrowUp") { moveInMenu(menu, -1, event); }
    if (event.key === "Home") { moveInMenu(menu, -Infinity, event); }
    if (event.key === "End") { moveInMenu(menu, Infinity, event); }
    if (event.key === "Escape") {
      const button = document.querySelector("[aria-controls='" + menu.id + "'], [data-menu='" + menu.id + "']");
      menu.hidden = true;
      if (button) {
        button.setAttribute("aria-expanded", "false");
        button.focus();
      }
      event.stopPropagation();
    }
  }, true);

  // -- Away / available ---------------------------------------------------------------------

  function showAway(away) {
    const toggle = $("#away-toggle");
    if (!toggle) { return; }
    toggle.setAttribute("aria-checked", away ? "true" : "false");
    const me = $(".topbar .me");
    if (me) { me.classList.toggle("is-away", away); }
  }

  async function toggleAway() {
    const toggle = $("#away-toggle");
    const away = toggle.getAttribute("aria-checked") !== "true";
    const menu = toggle.closest(".popover");
    if (menu) { menu.hidden = true; }
    const opener = $("[data-menu=user-menu]");
    if (opener) { opener.setAttribute("aria-expanded", "false"); }
    try {
      const row = await api("PUT", "/api/v1/presence/me", { availability: away ? "away" : "available" });
      showAway(row.availability === "away");
      toast(away ? t("You are away: no new conversations are assigned to you.") : t("You are available again."));
    } catch (error) {
      toast(error.message, true);
    }
  }

  api("GET", "/api/v1/presence").then(function (rows) {
    const mine = (rows || []).find(function (row) { return row.agent_id === config.me.id; });
    showAway(Boolean(mine && mine.availability === "away"));
  }, function () {});

  // -- Send later and the scheduled replies ---------------------------------------------------

  function localInput(date) {
    const pad = function (n) { return String(n).padStart(2, "0"); };
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) + "T" + pad(date.getHours()) + ":" + pad(date.getMinutes());
  }

  function openSendLater() {
    const body = $("#composer-body");
    $("#send-menu").hidden = true;
    if (!body || !body.value.trim()) {
      toast(t("Write the reply first."), true);
      if (body) { body.focus(); }
      return;
    }
    const dialog = $("#send-later-dialog");
    const soon = new Date(Date.now() + 3600000);
    soon.setMinutes(0, 0, 0);
    $("#send-later-at").value = localInput(soon);
    $("#send-later-error").hidden = true;
    dialog.showModal();
    $("#send-later-at").focus();
  }

  async function schedule(form) {
    const error = $("#send-later-error");
    // datetime-local is the agent's own time zone; the API wants an offset, so send UTC.
    const when = new Date($("#send-later-at").value);
    if (isNaN(when) || when.getTime() <= Date.now()) {
      error.textContent = t("Choose a time in the future.");
      error.hidden = false;
      return;
    }
    const body = $("#composer-body");
    const channel = Number(($("#channel-picker") || {}).value) || null;
    try {
      await api("POST", "/api/v1/scheduled-messages", {
        conversation_id: conversationId(),
        body: body.value,
        send_at: when.toISOString(),
        channel_account_id: channel,
      });
    } catch (failure) {
      error.textContent = failure.message;
      error.hidden = false;
      return;
    }
    form.closest("dialog").close();
    body.value = "";
    body.dispatchEvent(new Event("input", { bubbles: true }));
    toast(t("Reply scheduled for {time}.", { time: stamp.format(when) }));
    loadScheduled();
  }

  let scheduledFor = null;

  async function loadScheduled() {
    const id = conversationId();
    const composer = $("#composer");
    let box = $("#scheduled-list");
    if (!id || !composer) {
      if (box) { box.remove(); }
      return;
    }
    scheduledFor = id;
    let items = [];
    try {
      items = await api("GET", "/api/v1/scheduled-messages?state=pending&conversation_id=" + id);
    } catch (_error) {
      return;
    }
    if (conversationId() !== id) { return; }
    box = $("#scheduled-list");
    if (!items.length) {
      if (box) { box.remove(); }
      return;
    }
    if (!box) {
      box = document.createElement("section");
      box.id = "scheduled-list";
      box.className = "scheduled";
      box.setAttribute("aria-label", t("Scheduled replies"));
      $("#composer").before(box);
    }
    box.textContent = "";
    const title = document.createElement("h2");
    title.textContent = t("Scheduled replies");
    box.appendChild(title);
    const list = document.createElement("ul");
    items.forEach(function (item) {
      const when = stamp.format(new Date(item.send_at));
      const row = document.createElement("li");
      row.dataset.scheduled = String(item.id);
      const time = document.createElement("time");
      time.dateTime = item.send_at;
      time.textContent = t("Scheduled for {time}", { time: when });
      const text = document.createElement("span");
      text.className = "scheduled-body";
      text.textContent = item.body;
      const cancel = document.createElement("button");
      cancel.type = "button";
      cancel.className = "btn btn-small btn-ghost";
      cancel.dataset.cancelScheduled = String(item.id);
      cancel.textContent = t("Cancel");
      cancel.setAttribute("aria-label", t("Cancel the reply scheduled for {time}", { time: when }));
      row.append(time, text, cancel);
      list.appendChild(row);
    });
    box.appendChild(list);
  }

  async function cancelScheduled(button) {
    if (!window.confirm(t("Cancel this scheduled reply?"))) { return; }
    try {
      await api("DELETE", "/api/v1/scheduled-messages/" + button.dataset.cancelScheduled);
      toast(t("Scheduled reply cancelled."));
    } catch (error) {
      toast(error.message, true);
    }
    loadScheduled();
  }

  // -- Wiring -----------------------------------------------------------------------------------

  document.addEventListener("click", function (event) {
    const opener = event.target.closest("[aria-haspopup=menu]");
    if (opener && opener.id !== "macro-button" && opener.dataset.keyboard) {
      delete opener.dataset.keyboard;
      const first = $("[role=menuitem]", document.getElementById(opener.dataset.menu));
      if (first) { setTimeout(function () { first.focus(); }, 0); }
    }
    const target = event.target.closest("[data-ws-action], [data-macro], [data-cancel-scheduled], #macro-button");
    if (!target) { return; }
    if (target.id === "macro-button") {
      openMacros(target, Boolean(target.dataset.keyboard));
      delete target.dataset.keyboard;
    } else if (target.dataset.macro) {
      runMacro(target);
    } else if (target.dataset.cancelScheduled) {
      cancelScheduled(target);
    } else if (target.dataset.wsAction === "toggle-away") {
      toggleAway();
    } else if (target.dataset.wsAction === "send-later") {
      openSendLater();
    }
  });

  document.addEventListener("submit", function (event) {
    if (event.target.id !== "send-later-form") { return; }
    event.preventDefault();
    schedule(event.target);
  });

  // Fragments come in through htmx and app.js: tick new badges, load a newly opened
  // conversation's scheduled replies.
  let pending = false;
  new MutationObserver(function (mutations) {
    // Ignore what this file writes itself (badge texts, the scheduled list, toasts).
    const outside = mutations.some(function (m) { return !m.target.closest || !m.target.closest(".sla, #scheduled-list, #toasts"); });
    if (pending || !outside) { return; }
    pending = true;
    requestAnimationFrame(function () {
      pending = false;
      tickAll(document);
      if (conversationId() !== scheduledFor) { loadScheduled(); }
    });
  }).observe(document.body, { childList: true, subtree: true });

  tickAll(document);
  loadScheduled();
})();
