/* Hilo agent workspace: live updates over the agent websocket, changes through the REST API.
 *
 * The server renders every page and fragment (htmx swaps them in); this file only wires
 * events: websocket pushes -> fragment refreshes, buttons and forms -> REST calls,
 * presence (who is viewing / typing), notifications and keyboard shortcuts. */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("hilo-config").textContent);
  const me = config.me;
  const strings = config.strings || {};
  const lang = me.locale === "es" ? "es-ES" : "en-GB";
  const $ = function (selector, root) { return (root || document).querySelector(selector); };
  const $$ = function (selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); };

  function t(msgid, values) {
    let text = strings[msgid] || msgid;
    Object.keys(values || {}).forEach(function (key) { text = text.split("{" + key + "}").join(String(values[key])); });
    return text;
  }

  // A text about n things in the form n takes (ngettext; the page carries the forms).
  // Spanish and English have two forms: gettext's first is CLDR's "one".
  const pluralRule = new Intl.PluralRules(lang);
  function tn(singular, plural, n, values) {
    const forms = (config.plurals || {})[singular] || [singular, plural];
    const text = forms[pluralRule.select(n) === "one" ? 0 : forms.length - 1];
    return t(text, Object.assign({ n: n }, values));
  }

  // -- REST -------------------------------------------------------------------------------

  async function api(method, path, body) {
    const headers = { "Accept": "application/json", "X-CSRF-Token": config.csrf };
    let payload;
    if (body instanceof FormData) {
      payload = body;
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const response = await fetch(path, { method: method, headers: headers, body: payload, credentials: "same-origin" });
    if (response.status === 401) {
      window.location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
    }
    let data = null;
    if (response.status !== 204) {
      data = await response.json().catch(function () { return null; });
    }
    if (!response.ok) {
      const error = data && data.error ? data.error : {};
      const failure = new Error(error.message || t("Something went wrong; try again."));
      failure.status = response.status;
      failure.code = error.code;
      failure.details = error.details;
      throw failure;
    }
    return data;
  }

  // Pages' own scripts (contacts.js, loaded after this file) send through this same call.
  window.hiloApi = api;

  async function fragment(url) {
    const response = await fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" });
    if (response.status === 401) {
      window.location.assign("/login");
      return null;
    }
    if (!response.ok) { return null; }
    return response.text();
  }

  function nodesFrom(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    return template.content;
  }

  function settle(root) {
    if (window.htmx) { window.htmx.process(root); }
    formatTimes(root);
  }

  function toast(message, options) {
    const opts = options || {};
    const box = document.createElement("div");
    box.className = "toast" + (opts.error ? " toast-error" : "");
    const text = document.createElement("span");
    text.textContent = message;
    box.appendChild(text);
    if (opts.link) {
      const link = document.createElement("a");
      link.href = opts.link.href;
      link.textContent = opts.link.label;
      link.addEventListener("click", function (event) {
        event.preventDefault();
        box.remove();
        opts.link.open();
      });
      box.appendChild(link);
    }
    $("#toasts").appendChild(box);
    setTimeout(function () { box.remove(); }, opts.timeout || 5000);
  }

  function fail(error) { toast(error.message || t("Something went wrong; try again."), { error: true }); }

  // -- Time: the server writes UTC text; the browser shows the agent's own time zone --------

  const relative = new Intl.RelativeTimeFormat(lang, { numeric: "auto", style: "short" });
  // The one form of a date and time on every page; the server writes the same (rendering.datetime_text).
  const stamp = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
  const day = new Intl.DateTimeFormat(lang, { day: "numeric", month: "short" });
  const full = new Intl.DateTimeFormat(lang, { dateStyle: "full", timeStyle: "short" });

  function since(ms) {
    const minutes = Math.max(0, Math.round(ms / 60000));
    const unit = minutes < 60 ? ["minute", minutes] : minutes < 2880 ? ["hour", Math.round(minutes / 60)] : ["day", Math.round(minutes / 1440)];
    return new Intl.NumberFormat(lang, { style: "unit", unit: unit[0], unitDisplay: "short" }).format(unit[1]);
  }

  function formatTimes(root) {
    const now = Date.now();
    $$("time[datetime]", root).forEach(function (el) {
      const when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) { return; }
      const diff = now - when.getTime();
      const fmt = el.dataset.fmt;
      el.title = full.format(when);
      if (fmt === "since") {
        el.textContent = since(diff);
      } else if (fmt === "datetime") {
        el.textContent = stamp.format(when);
      } else if (Math.abs(diff) < 45000) {
        el.textContent = relative.format(0, "second");
      } else if (Math.abs(diff) < 3600000) {
        el.textContent = relative.format(-Math.round(diff / 60000), "minute");
      } else if (Math.abs(diff) < 86400000) {
        el.textContent = relative.format(-Math.round(diff / 3600000), "hour");
      } else {
        el.textContent = day.format(when);
      }
    });
  }

  // -- Current state ----------------------------------------------------------------------

  function conversationId() {
    const pane = $("#conversation");
    return pane ? Number(pane.dataset.id) : null;
  }

  function listEl() { return $("#list"); }

  function throttled(fn, wait) {
    let timer = null;
    let again = false;
    return function () {
      if (timer) { again = true; return; }
      fn();
      timer = setTimeout(function () {
        timer = null;
        if (again) { again = false; fn(); }
      }, wait);
    };
  }

  // Do not replace a fragment while the agent is typing in it: resolves once they leave it.
  function idle(target) {
    return new Promise(function (resolve) {
      if (target && target.contains(document.activeElement) && document.activeElement.matches("input, textarea, select")) {
        target.addEventListener("focusout", function later() {
          target.removeEventListener("focusout", later);
          setTimeout(resolve, 50);
        });
        return;
      }
      resolve();
    });
  }

  // -- Live refreshes -----------------------------------------------------------------------
  //
  // The page is made of regions that re-render from the server: the list, the sidebar, the
  // conversation's header, its timeline (new entries, one message's delivery status, or the
  // whole history) and the contact panel. `regionsFor` (under the websocket) is the one place
  // that says which regions an event changes; websocket events, the agent's own actions and
  // reconnects all go through `refresh`. A region loads one request at a time and once more
  // if asked meanwhile, so the last answer shown was always fetched after the last change;
  // timeline work runs in arrival order. Swaps keep open menus and focus (`swapKeeping`).

  function serial(fn, gap) {
    let running = null;
    let again = false;
    function run() {
      if (running) {
        again = true;
        return running;
      }
      running = Promise.resolve().then(fn).catch(function () {}).then(function () {
        return new Promise(function (resolve) { setTimeout(resolve, gap || 0); });
      }).then(function () {
        running = null;
        if (again) {
          again = false;
          return run();
        }
        return null;
      });
      return running;
    }
    return run;
  }

  // Replace `current` with `fresh`, keeping the menus that were open (a colleague's change must
  // not close the agent's "..." menu) and the focus on the control that had it.
  function swapKeeping(current, fresh) {
    const open = $$(".popover:not([hidden])", current).filter(function (pop) { return pop.id; });
    const focused = current.contains(document.activeElement) ? document.activeElement : null;
    current.replaceWith(fresh);
    open.forEach(function (old) {
      const pop = document.getElementById(old.id);
      if (!pop || !fresh.contains(pop)) { return; }
      // Menus filled in the browser (macros) keep their items; server-rendered ones show the fresh ones.
      if (!pop.children.length && old.children.length) { pop.replaceChildren.apply(pop, Array.prototype.slice.call(old.childNodes)); }
      pop.hidden = false;
      $$("[data-menu='" + old.id + "'], [aria-controls='" + old.id + "']", fresh).forEach(function (button) { button.setAttribute("aria-expanded", "true"); });
    });
    if (focused) {
      let again = null;
      if (focused.id) {
        again = document.getElementById(focused.id);
      } else if (focused.dataset.menu) {
        again = $("[data-menu='" + focused.dataset.menu + "']", fresh);
      }
      if (again && fresh.contains(again)) { again.focus({ preventScroll: true }); }
    }
    settle(fresh);
  }

  const refreshList = serial(async function () {
    const list = listEl();
    const rows = $("#rows");
    if (!list || !rows) { return; }
    const size = Math.min(100, Math.max(25, $$(".row", rows).length));
    const html = await fragment("/ui/list?" + list.dataset.query + "&live=1&size=" + size);
    if (html === null || $("#rows") !== rows) { return; }
    const checked = selectedIds();
    const scroll = rows.scrollTop;
    rows.innerHTML = "";
    rows.appendChild(nodesFrom(html));
    rows.scrollTop = scroll;
    checked.forEach(function (id) {
      const box = $("#row-" + id + " .row-check");
      if (box) { box.checked = true; }
    });
    settle(rows);
    markActiveRow();
    updateBulk();
  }, 600);

  const refreshSidebar = serial(async function () {
    const list = listEl();
    const sidebar = $("#sidebar");
    if (!list || !sidebar) { return; }
    const html = await fragment("/ui/sidebar?view=" + encodeURIComponent(list.dataset.view) + "&" + statusParam());
    if (html === null) { return; }
    sidebar.innerHTML = "";
    sidebar.appendChild(nodesFrom(html));
    settle(sidebar);
  }, 800);

  function statusParam() {
    const select = $("#list-form select[name=status]");
    return select ? "status=" + encodeURIComponent(select.value) : "";
  }

  // The header or the contact panel of the open conversation, from its fragment URL.
  function paneRegion(selector, path) {
    return serial(async function () {
      const id = conversationId();
      if (!id || !$(selector)) { return; }
      await idle($(selector));
      const html = await fragment("/ui/conversations/" + id + "/" + path);
      const current = $(selector);
      if (html === null || !current || conversationId() !== id) { return; }
      swapKeeping(current, nodesFrom(html).firstElementChild);
    }, 100);
  }

  const refreshHeader = paneRegion("#conv-header", "header");
  const refreshContext = paneRegion("#context", "context");

  function nearBottom(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < 120; }

  // Keep the newest message in sight while the composer, hints or images change the layout,
  // unless the agent scrolled up to read.
  let stickToBottom = true;
  function pinTimeline() {
    const timeline = $("#timeline");
    if (!timeline) { return; }
    stickToBottom = true;
    timeline.scrollTop = timeline.scrollHeight;
    if (timeline.dataset.pinned) { return; }
    timeline.dataset.pinned = "1";
    const follow = function () { if (stickToBottom) { timeline.scrollTop = timeline.scrollHeight; } };
    timeline.addEventListener("scroll", function () { stickToBottom = nearBottom(timeline); });
    timeline.addEventListener("load", follow, true);
    new ResizeObserver(follow).observe(timeline);
  }

  // Timeline work runs in arrival order: a delivery status that arrives while its message is
  // still being appended re-renders it once it is there, instead of being lost.
  let timelineWork = Promise.resolve();
  function onTimeline(task) {
    timelineWork = timelineWork.then(task).catch(function () {});
    return timelineWork;
  }

  function appendNew() {
    return onTimeline(async function () {
      const id = conversationId();
      const timeline = $("#timeline");
      if (!id || !timeline) { return; }
      const last = $$("[data-id]", timeline).reduce(function (max, el) { return Math.max(max, Number(el.dataset.id)); }, 0);
      const html = await fragment("/ui/conversations/" + id + "/messages?after=" + last);
      if (!html || conversationId() !== id) { return; }
      const stick = nearBottom(timeline);
      const nodes = nodesFrom(html);
      $$("[data-id]", nodes).forEach(function (el) {
        if (document.getElementById(el.id)) { el.remove(); }
      });
      const added = Array.prototype.slice.call(nodes.children);
      timeline.appendChild(nodes);
      added.forEach(settle);
      if (stick) { timeline.scrollTop = timeline.scrollHeight; }
    });
  }

  function replaceMessage(messageId) {
    return onTimeline(async function () {
      if (!document.getElementById("m-" + messageId)) { return; }
      const html = await fragment("/ui/messages/" + messageId);
      const current = document.getElementById("m-" + messageId);
      if (!html || !current) { return; }
      const fresh = nodesFrom(html).querySelector("#m-" + messageId);
      if (fresh) { swapKeeping(current, fresh); }
    });
  }

  // The whole history again (a contact merge or split changed which conversations it walks
  // through); the composer and what the agent typed stay.
  function reloadTimeline() {
    return onTimeline(async function () {
      const id = conversationId();
      if (!id || !$("#timeline")) { return; }
      const html = await fragment("/ui/conversations/" + id);
      const fresh = html && nodesFrom(html);
      const current = $("#timeline");
      if (!fresh || !current || conversationId() !== id) { return; }
      const timeline = fresh.querySelector("#timeline");
      const conversation = fresh.querySelector("#conversation");
      if (!timeline || !conversation) { return; }
      $("#conversation").dataset.contact = conversation.dataset.contact;
      current.replaceWith(timeline);
      settle(timeline);
      pinTimeline();
    });
  }

  // Replies whose delivery may still move on (after the socket was away).
  function unsettledMessages() {
    return $$("#timeline .msg-outbound[data-status=queued], #timeline .msg-outbound[data-status=sent], #timeline .msg-outbound[data-status=delivered]")
      .map(function (el) { return Number(el.dataset.id); });
  }

  // Re-render one part of a server-rendered page (an administration card after its form saved)
  // from the page as the server renders it now: what it shows is derived (counts), not typed.
  async function refreshFromPage(current) {
    if (!current) { return; }
    const response = await fetch(window.location.href, { credentials: "same-origin" });
    if (!response.ok) { return; }
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById(current.id);
    if (fresh && current.isConnected) { swapKeeping(current, document.importNode(fresh, true)); }
  }

  // The teams page: a team's card as the server renders it now (added by a colleague, or its
  // members changed); the rest of the page, and what the agent is editing there, stay.
  async function refreshTeam(teamId) {
    const teams = $("#teams");
    if (!teams || !teamId) { return; }
    const current = document.getElementById("team-" + teamId);
    if (current) {
      await idle(current);
      await refreshFromPage(current);
      return;
    }
    const response = await fetch(window.location.href, { credentials: "same-origin" });
    if (!response.ok) { return; }
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById("team-" + teamId);
    if (fresh && !document.getElementById(fresh.id) && $("#teams")) {
      $$("#teams > :not(article)").forEach(function (empty) { empty.remove(); });
      const card = document.importNode(fresh, true);
      $("#teams").appendChild(card);
      settle(card);
    }
  }

  function refresh(regions) {
    if (regions.list) { refreshList(); }
    if (regions.sidebar) { refreshSidebar(); }
    if (!conversationId()) { return; }
    if (regions.header) { refreshHeader(); }
    if (regions.context) { refreshContext(); }
    if (regions.history) {
      reloadTimeline();
    } else if (regions.append) {
      appendNew();
    }
    (regions.messages || []).forEach(replaceMessage);
  }

  function refreshAll() {
    refreshList();
    refreshSidebar();
    if (conversationId()) {
      refresh({ header: true, context: true, append: true, messages: unsettledMessages() });
    }
  }

  document.addEventListener("hilo:refresh", function (event) {
    const regions = {};
    (event.detail || []).forEach(function (name) { regions[name] = true; });
    refresh(regions);
  });

  // -- Websocket ----------------------------------------------------------------------------

  let socket = null;
  let attempts = 0;
  let lostAt = null;
  let viewing = null;

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) { socket.send(JSON.stringify(message)); }
  }

  function connect() {
    socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/v1/ws");
    socket.addEventListener("open", function () {
      attempts = 0;
      $("#conn").hidden = true;
      if (viewing) { send({ type: "viewing", conversation_id: viewing }); }
      if (lostAt) {
        lostAt = null;
        refreshAll();
        toast(t("Connected again."));
      }
    });
    socket.addEventListener("message", function (message) {
      let event;
      try { event = JSON.parse(message.data); } catch (_err) { return; }
      onEvent(event);
    });
    socket.addEventListener("close", function (closed) {
      if (closed.code === 4401) {
        window.location.assign("/login");
        return;
      }
      if (!lostAt) { lostAt = Date.now(); }
      $("#conn").hidden = false;
      attempts += 1;
      setTimeout(connect, Math.min(15000, 500 * Math.pow(2, attempts)) + Math.random() * 400);
    });
  }

  setInterval(function () { send({ type: "ping" }); }, 25000);

  // Which regions of the page an event changes: the map of live updates (docs/agent-ui.md).
  function regionsFor(event, open, contact) {
    const type = event.type || "";
    const regions = {};
    if (event.conversation_id) {
      // Every change of a conversation moves its list row and the counts.
      regions.list = true;
      regions.sidebar = true;
    }
    if (event.conversation_id && event.conversation_id === open) {
      if (type === "message.created" || type.indexOf("conversation.") === 0) {
        // A message or a change of the conversation: it joins the timeline, and the header
        // (status, assignee, team, priority, labels, SLA) shows the conversation's new state.
        regions.append = true;
        regions.header = true;
      } else if (event.message_id) {
        // A delivery tick, a retry, an attachment fetched: the message it names re-renders.
        regions.messages = [event.message_id];
      } else {
        // SLA targets and anything else about the conversation: its header.
        regions.header = true;
      }
      if (type === "conversation.merged" || type.indexOf("conversation.split") === 0 || type.indexOf("contact.") === 0 || type.indexOf("identity.") === 0) {
        regions.context = true;
      }
    }
    const contacts = [event.contact_id, event.source_id, event.new_contact_id];
    if (!event.conversation_id && (type.indexOf("contact.") === 0 || type.indexOf("identity.") === 0)) {
      // A contact's name shows in list rows; the open one's panel, header and history too.
      regions.list = contacts.some(function (id) { return id && $("#rows .row[data-contact='" + id + "']"); });
      if (contact && contacts.indexOf(contact) !== -1) {
        regions.header = true;
        regions.context = true;
        regions.history = type === "contact.merged" || type === "contact.split";
      }
    }
    return regions;
  }

  // Events of the last seconds: those for a conversation that was loading when they came are
  // applied again once it shows (its fragment may have been rendered before them).
  const recent = [];

  function onEvent(event) {
    document.dispatchEvent(new CustomEvent("hilo:event", { detail: event }));  // workspace.js listens
    const type = event.type || "";
    if (type.indexOf("presence.") === 0) {
      onPresence(event);
      return;
    }
    if (type === "notification.created") {
      onNotification(event.notification);
      return;
    }
    if (type === "notifications.read") {
      loadNotificationCount();
      return;
    }
    if (type.indexOf("view.") === 0) {
      refreshSidebar();
      return;
    }
    if (type === "conversation.read") {
      refreshSidebar();
      const row = $("#row-" + event.conversation_id);
      if (row) { row.classList.remove("unread"); }
      return;
    }
    if (type === "contact.typing") {
      if (conversationId() === event.conversation_id) { showContactTyping(true); }
      return;
    }
    if (type.indexOf("team.") === 0) {
      refreshTeam(event.team_id);
      return;
    }
    if (event.conversation_id) {
      recent.push({ at: Date.now(), event: event });
      while (recent.length && (recent.length > 200 || recent[0].at < Date.now() - 10000)) { recent.shift(); }
    }
    apply(event);
  }

  function apply(event) {
    const open = conversationId();
    const conversation = $("#conversation");
    const contact = conversation ? Number(conversation.dataset.contact) : null;
    refresh(regionsFor(event, open, contact));
    if (!open || event.conversation_id !== open) { return; }
    if (event.type === "message.created" && event.direction === "inbound") {
      showContactTyping(false);
      markRead();
      // A customer's message can reopen a channel (WhatsApp's 24-hour window).
      if (composer()) { loadChannels(composer().dataset.conversation); }
    } else if (event.type === "conversation.merged_away") {
      toast(t("Merged into another conversation."), {
        link: { href: "/inbox?c=" + event.merged_into_id, label: t("Open it"), open: function () { openConversation(event.merged_into_id); } },
      });
    }
  }

  // The conversation just shown may have been rendered before events that came while it loaded.
  function replayRecent(id) {
    recent.filter(function (item) { return item.event.conversation_id === id; }).forEach(function (item) {
      const regions = regionsFor(item.event, id, null);
      refresh({ header: regions.header, append: regions.append, messages: regions.messages, context: regions.context });
    });
  }

  // -- Presence: who else is viewing or typing ----------------------------------------------

  const viewers = new Map();

  function onPresence(event) {
    if (event.agent_id === me.id || event.conversation_id !== conversationId()) { return; }
    const known = viewers.get(event.agent_id);
    if (event.type === "presence.left") {
      viewers.delete(event.agent_id);
    } else {
      const entry = known || { name: event.agent_name, typingUntil: 0 };
      if (event.type === "presence.typing") { entry.typingUntil = Date.now() + 6000; }
      viewers.set(event.agent_id, entry);
      // Someone arrived: tell them we are here too (once; they already know about us otherwise).
      if (!known) { send({ type: "viewing", conversation_id: event.conversation_id }); }
    }
    renderPresence();
  }

  // The contact typing in the chat widget: the widget repeats its typing event every few
  // seconds, so the line goes when they stop for a while or their message arrives.
  let contactTyping = false;
  let contactTypingTimer = 0;

  function showContactTyping(on) {
    clearTimeout(contactTypingTimer);
    if (on) { contactTypingTimer = setTimeout(function () { showContactTyping(false); }, 6000); }
    if (!on && !contactTyping) { return; }
    contactTyping = on;
    renderPresence();
  }

  function renderPresence() {
    const box = $("#presence");
    if (!box) { return; }
    box.innerHTML = "";
    const now = Date.now();
    if (contactTyping) {
      const header = $("#conv-header h1");
      const item = document.createElement("span");
      item.className = "typing";
      item.dataset.contact = $("#conversation").dataset.contact;
      item.textContent = t("{name} is typing…", { name: header ? header.textContent.trim() : "" });
      box.appendChild(item);
    }
    viewers.forEach(function (entry, agentId) {
      const item = document.createElement("span");
      item.dataset.agent = agentId;
      const typing = entry.typingUntil > now;
      if (typing) { item.className = "typing"; }
      item.textContent = typing ? t("{name} is typing…", { name: entry.name }) : t("{name} is viewing", { name: entry.name });
      box.appendChild(item);
    });
  }

  setInterval(function () {
    if (viewers.size) { renderPresence(); }
  }, 2000);

  // -- Opening a conversation -----------------------------------------------------------------

  function openConversation(id) {
    const list = listEl();
    const url = "/inbox?" + (list ? list.dataset.query + "&" : "") + "c=" + id;
    window.htmx.ajax("GET", "/ui/conversations/" + id, { target: "#pane", swap: "innerHTML" }).then(function () {
      history.pushState({}, "", url);
    });
  }

  function markActiveRow() {
    const id = conversationId();
    $$(".row.active").forEach(function (row) { row.classList.remove("active"); });
    if (id) {
      const row = $("#row-" + id);
      if (row) { row.classList.add("active"); }
    }
  }

  const markRead = throttled(function () {
    const id = conversationId();
    if (!id || document.hidden) { return; }
    const row = $("#row-" + id);
    if (row) { row.classList.remove("unread"); }
    api("POST", "/api/v1/conversations/" + id + "/read").catch(function () {});
  }, 1500);

  function conversationOpened() {
    const id = conversationId();
    const app = $("#app");
    if (viewing && viewing !== id) { send({ type: "left", conversation_id: viewing }); }
    viewers.clear();
    showContactTyping(false);
    viewing = id;
    if (app) { app.dataset.pane = id ? "conversation" : "list"; }
    markActiveRow();
    if (!id) { return; }
    send({ type: "viewing", conversation_id: id });
    renderPresence();
    pinTimeline();
    setupComposer();
    markRead();
    replayRecent(id);
  }

  window.addEventListener("pagehide", function () {
    if (viewing) { send({ type: "left", conversation_id: viewing }); }
  });
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { markRead(); }
  });

  // -- Composer -------------------------------------------------------------------------------

  let files = [];
  let mentionIds = new Set();
  let lastTyping = 0;

  function composer() { return $("#composer"); }

  function setMode(mode) {
    const form = composer();
    if (!form) { return; }
    form.dataset.mode = mode;
    $$(".tabs [data-mode]", form).forEach(function (tab) { tab.setAttribute("aria-selected", String(tab.dataset.mode === mode)); });
    const body = $("#composer-body");
    body.placeholder = mode === "note" ? body.dataset.notePlaceholder : body.dataset.replyPlaceholder;
    $("[data-label-reply]", form).hidden = mode === "note";
    $("[data-label-note]", form).hidden = mode !== "note";
    hideCollision();
    refreshComposer();
  }

  function setupComposer() {
    const form = composer();
    files = [];
    mentionIds = new Set();
    channelOptions = {};
    templateWanted = false;
    templatesFor = null;
    mailFor = null;
    if (!form) { return; }
    renderFiles();
    loadChannels(form.dataset.conversation);
  }

  // The channel options of the open conversation (GET /api/v1/conversations/<id>/channels), by id.
  let channelOptions = {};

  function selectedOption() {
    const picker = $("#channel-picker");
    return picker ? channelOptions[picker.value] || null : null;
  }

  function offersTemplates(option) { return Boolean(option) && (config.template_kinds || []).indexOf(option.kind) !== -1; }

  // WhatsApp's 24-hour window is closed: free text is refused, an approved template still goes.
  function templatesOnly(option) { return offersTemplates(option) && option.code === "whatsapp_window_closed"; }

  async function loadChannels(id) {
    const picker = $("#channel-picker");
    if (!picker) { return; }
    let options = [];
    try {
      options = await api("GET", "/api/v1/conversations/" + id + "/channels");
    } catch (error) {
      options = [];
    }
    if (String(conversationId()) !== String(id)) { return; }
    const before = picker.value;
    picker.innerHTML = "";
    channelOptions = {};
    let preferred = null;
    let available = null;
    let usable = null;
    options.forEach(function (option) {
      channelOptions[String(option.channel_account_id)] = option;
      const el = document.createElement("option");
      el.value = option.channel_account_id;
      el.dataset.kind = option.kind;
      let label = option.name;
      if (option.default) { label += " · " + t("default"); }
      const onlyTemplates = templatesOnly(option);
      if (onlyTemplates) {
        label += " — " + t("templates only");
      } else if (!option.available) {
        label += " — " + t("Unavailable") + ": " + (option.reason || "");
        el.disabled = true;
      }
      el.textContent = label;
      el.title = option.identity_value || "";
      picker.appendChild(el);
      if (option.default && !el.disabled) { preferred = preferred || el; }
      // A reload of the options keeps the agent's own choice while it can still be used.
      if (before && el.value === before && !el.disabled) { preferred = el; }
      if (option.available && !available) { available = el; }
      if (!el.disabled && !usable) { usable = el; }
    });
    // The channel the customer used last, even when only a template can go there now.
    const chosen = preferred || available || usable;
    if (chosen) { picker.value = chosen.value; }
    refreshComposer();
  }

  // Show what the chosen channel needs: e-mail's To and CC, WhatsApp's templates, SMS's segment count.
  function refreshComposer() {
    const form = composer();
    if (!form) { return; }
    const reply = form.dataset.mode === "reply";
    const option = reply ? selectedOption() : null;
    const kind = option ? option.kind : "";
    const forced = templatesOnly(option);
    const useTemplate = offersTemplates(option) && (forced || templateWanted);
    const toggle = $("#template-toggle");
    form.dataset.template = useTemplate ? "on" : "";
    toggle.hidden = !offersTemplates(option) || forced;
    toggle.setAttribute("aria-pressed", String(useTemplate));
    $("#template-panel").hidden = !useTemplate;
    $("#attach").hidden = !reply || useTemplate;
    $("#mail-fields").hidden = kind !== "email";
    if (kind === "email") { prefillMail(option); }
    if (useTemplate) { loadTemplates(option.channel_account_id); }
    updateChannelHint();
    updateSmsCount();
  }

  function updateChannelHint() {
    const hint = $("#channel-hint");
    const form = composer();
    if (!hint || !form) { return; }
    const selected = selectedOption();
    const blockedDefault = Object.keys(channelOptions).map(function (key) { return channelOptions[key]; })
      .find(function (option) { return option.default && !option.available; });
    const shown = templatesOnly(selected) ? selected : blockedDefault;
    if (form.dataset.mode === "reply" && shown && shown.reason) {
      hint.textContent = shown.name + ": " + shown.reason;
      hint.hidden = false;
    } else {
      hint.hidden = true;
    }
  }

  // -- E-mail: To and CC, prefilled for "reply all" ------------------------------------------

  let mailFor = null;
  const EMAIL = /^[^\s@,;<>"]+@[^\s@,;<>"]+\.[^\s@,;<>"]+$/;

  function prefillMail(option) {
    if (mailFor === option.channel_account_id) { return; }
    mailFor = option.channel_account_id;
    $("#reply-to").value = option.identity_value || "";
    $("#reply-cc").value = (option.cc || []).join(", ");
    showMailError(null);
  }

  function showMailError(message, input) {
    const box = $("#mail-error");
    if (!box) { return; }
    $$("#mail-fields input").forEach(function (el) { el.removeAttribute("aria-invalid"); });
    box.hidden = !message;
    box.textContent = message || "";
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  }

  // {to, cc} of an e-mail reply, null on another channel, false (and the error shown) when invalid.
  function mailFields() {
    const option = selectedOption();
    if (!option || option.kind !== "email") { return null; }
    const toInput = $("#reply-to");
    const ccInput = $("#reply-cc");
    const to = toInput.value.trim();
    if (!EMAIL.test(to)) {
      showMailError(to ? t("{address} is not a valid e-mail address.", { address: to }) : t("Write the address to send to."), toInput);
      return false;
    }
    const cc = ccInput.value.split(/[\s,;]+/).filter(Boolean);
    const wrong = cc.find(function (address) { return !EMAIL.test(address); });
    if (wrong) {
      showMailError(t("{address} is not a valid e-mail address.", { address: wrong }), ccInput);
      return false;
    }
    showMailError(null);
    return { to: to, cc: cc.filter(function (address) { return address.toLowerCase() !== to.toLowerCase(); }) };
  }

  // -- WhatsApp templates --------------------------------------------------------------------

  let templateWanted = false;
  let templatesFor = null;
  let templates = [];
  let templateParts = [];

  function templateLanguage(template) {
    const language = template.language;
    return language && typeof language === "object" ? language.code : language;
  }

  function placeholders(text) {
    const names = [];
    String(text || "").replace(/\{\{\s*([\w.]+)\s*\}\}/g, function (match, name) {
      if (names.indexOf(name) === -1) { names.push(name); }
      return match;
    });
    // Positional parameters go in their number's order, whatever order the text uses them in.
    if (names.every(function (name) { return /^\d+$/.test(name); })) { names.sort(function (a, b) { return Number(a) - Number(b); }); }
    return names;
  }

  // The parts of a template an agent fills in: a text header, the body, and URL buttons.
  function partsOf(template) {
    const parts = [];
    (template.components || []).forEach(function (component) {
      const type = String(component.type || "").toLowerCase();
      if (type === "body" || (type === "header" && String(component.format || "text").toLowerCase() === "text")) {
        parts.push({ type: type, text: String(component.text || ""), names: placeholders(component.text) });
      } else if (type === "buttons") {
        (component.buttons || []).forEach(function (button, index) {
          if (String(button.type || "").toLowerCase() === "url" && placeholders(button.url).length) {
            parts.push({ type: "button", index: index, text: String(button.url), names: placeholders(button.url) });
          }
        });
      }
    });
    return parts;
  }

  function hasMediaHeader(template) {
    return (template.components || []).some(function (component) {
      return String(component.type || "").toLowerCase() === "header" && String(component.format || "text").toLowerCase() !== "text";
    });
  }

  async function loadTemplates(channelId) {
    if (templatesFor === channelId) { return; }
    templatesFor = channelId;
    const picker = $("#template-picker");
    let items = [];
    try {
      items = (await api("GET", "/api/v1/channels/" + channelId + "/templates")).items || [];
    } catch (error) {
      fail(error);
    }
    if (templatesFor !== channelId || !$("#template-picker")) { return; }
    templates = items;
    while (picker.options.length > 1) { picker.remove(1); }
    items.forEach(function (template, index) {
      const el = document.createElement("option");
      el.value = String(index);
      el.textContent = template.name + " · " + templateLanguage(template);
      if (hasMediaHeader(template)) {
        el.disabled = true;
        el.textContent += " — " + t("has a media header; send it through the API");
      }
      picker.appendChild(el);
    });
    picker.value = "";
    $("#template-empty").hidden = items.length > 0;
    renderTemplate();
  }

  function chosenTemplate() {
    const picker = $("#template-picker");
    return picker && picker.value !== "" ? templates[Number(picker.value)] || null : null;
  }

  function renderTemplate() {
    const template = chosenTemplate();
    const vars = $("#template-vars");
    vars.innerHTML = "";
    showTemplateError(null);
    templateParts = template ? partsOf(template) : [];
    const labels = { header: t("Header"), body: "", button: t("Link") };
    templateParts.forEach(function (part, partIndex) {
      part.names.forEach(function (name) {
        const field = document.createElement("label");
        field.className = "composer-field";
        const caption = document.createElement("span");
        caption.textContent = (labels[part.type] ? labels[part.type] + " " : "") + "{{" + name + "}}";
        const input = document.createElement("input");
        input.className = "input input-small";
        input.type = "text";
        input.dataset.part = String(partIndex);
        input.dataset.name = name;
        input.setAttribute("aria-label", t("Value for {name}", { name: "{{" + name + "}}" }));
        field.append(caption, input);
        vars.appendChild(field);
      });
    });
    updateTemplatePreview();
  }

  function templateValue(partIndex, name) {
    const input = $("#template-vars input[data-part='" + partIndex + "'][data-name='" + name + "']");
    return input ? input.value.trim() : "";
  }

  function filledText(part, partIndex, node) {
    const pieces = part.text.split(/(\{\{\s*[\w.]+\s*\}\})/);
    let text = "";
    pieces.forEach(function (piece) {
      const match = /^\{\{\s*([\w.]+)\s*\}\}$/.exec(piece);
      const value = match ? templateValue(partIndex, match[1]) : piece;
      text += value || piece;
      if (!node) { return; }
      if (match && !value) {
        const mark = document.createElement("mark");
        mark.textContent = piece;
        node.appendChild(mark);
      } else {
        node.appendChild(document.createTextNode(value));
      }
    });
    return text;
  }

  function updateTemplatePreview() {
    const preview = $("#template-preview");
    if (!preview) { return; }
    preview.innerHTML = "";
    const shown = templateParts.filter(function (part) { return part.type !== "button"; });
    shown.forEach(function (part, index) {
      if (index) { preview.appendChild(document.createTextNode("\n\n")); }
      filledText(part, templateParts.indexOf(part), preview);
    });
    preview.hidden = shown.length === 0;
  }

  function showTemplateError(message) {
    const box = $("#template-error");
    if (!box) { return; }
    box.hidden = !message;
    box.textContent = message || "";
  }

  // The template reply: what the API sends to WhatsApp, and its text for the timeline.
  function templateReply() {
    const template = chosenTemplate();
    if (!template) {
      showTemplateError(t("Choose a template first."));
      $("#template-picker").focus();
      return null;
    }
    const empty = $$("#template-vars input").find(function (input) { return !input.value.trim(); });
    if (empty) {
      showTemplateError(t("Fill in every variable of the template."));
      empty.focus();
      return null;
    }
    showTemplateError(null);
    const components = [];
    templateParts.forEach(function (part, partIndex) {
      if (!part.names.length) { return; }
      const component = {
        type: part.type,
        parameters: part.names.map(function (name) {
          const parameter = { type: "text", text: templateValue(partIndex, name) };
          if (!/^\d+$/.test(name)) { parameter.parameter_name = name; }
          return parameter;
        }),
      };
      if (part.type === "button") {
        component.sub_type = "url";
        component.index = String(part.index);
      }
      components.push(component);
    });
    const payload = { name: template.name, language: templateLanguage(template) };
    if (components.length) { payload.components = components; }
    const text = templateParts.filter(function (part) { return part.type !== "button"; })
      .map(function (part) { return filledText(part, templateParts.indexOf(part), null); }).join("\n\n");
    return { template: payload, body: text || template.name };
  }

  // -- SMS: characters and segments while typing (POST /api/v1/channels/<id>/preview) ---------

  let smsTimer = 0;
  let smsRequest = 0;

  function updateSmsCount() {
    const box = $("#sms-count");
    const form = composer();
    if (!box || !form) { return; }
    clearTimeout(smsTimer);
    const option = form.dataset.mode === "reply" ? selectedOption() : null;
    const text = $("#composer-body").value;
    if (!option || option.kind !== "sms" || !text) {
      smsRequest += 1;
      box.hidden = true;
      $("#sms-warning").hidden = true;
      return;
    }
    smsTimer = setTimeout(function () { previewSms(option.channel_account_id, text); }, 250);
  }

  async function previewSms(channelId, text) {
    const request = ++smsRequest;
    let preview;
    try {
      preview = await api("POST", "/api/v1/channels/" + channelId + "/preview", { body: text });
    } catch (_err) {
      return;
    }
    if (request !== smsRequest || !preview.sms) { return; }
    renderSms(preview.sms);
  }

  function renderSms(sms) {
    const box = $("#sms-count");
    const warning = $("#sms-warning");
    if (!box || !warning) { return; }
    const characters = tn("{n} character", "{n} characters", sms.characters);
    const segments = tn("{n} segment", "{n} segments", sms.segments);
    box.textContent = characters + " · " + segments + " · " + sms.encoding;
    box.title = sms.encoding === "GSM-7"
      ? t("GSM-7: 160 characters fit in one SMS, 153 in each part of a longer one.")
      : t("UCS-2 (an emoji or a character outside the GSM alphabet): 70 characters fit in one SMS, 67 in each part of a longer one.");
    box.classList.toggle("warn", sms.segments > 1);
    box.hidden = false;
    warning.classList.toggle("error", Boolean(sms.too_long));
    if (sms.too_long) {
      warning.textContent = tn(
        "Too long for SMS on this channel (at most {n} part). Shorten it or reply on another channel.",
        "Too long for SMS on this channel (at most {n} parts). Shorten it or reply on another channel.",
        sms.max_segments
      );
    } else {
      warning.textContent = t("Longer than one SMS: it goes out in {n} parts, and each part is charged.", { n: sms.segments });
    }
    warning.hidden = !(sms.too_long || sms.segments > 1);
  }

  function renderFiles() {
    const box = $("#files");
    if (!box) { return; }
    box.innerHTML = "";
    files.forEach(function (file, index) {
      const chip = document.createElement("span");
      chip.className = "chip";
      chip.textContent = file.name;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.setAttribute("aria-label", t("Cancel"));
      remove.innerHTML = '<svg class="i"><use href="#i-x"/></svg>';
      remove.addEventListener("click", function () {
        files.splice(index, 1);
        renderFiles();
      });
      chip.appendChild(remove);
      box.appendChild(chip);
    });
  }

  function hideCollision() {
    const box = $("#collision");
    if (box) { box.hidden = true; box.innerHTML = ""; }
  }

  function showCollision() {
    const box = $("#collision");
    box.innerHTML = "";
    const text = document.createElement("span");
    text.textContent = t("Someone else replied since you opened this conversation.");
    const confirm = document.createElement("button");
    confirm.type = "button";
    confirm.className = "btn btn-small btn-primary";
    confirm.dataset.action = "send-anyway";
    confirm.textContent = t("Send anyway");
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "btn btn-small";
    cancel.dataset.action = "cancel-collision";
    cancel.textContent = t("Cancel");
    box.append(text, confirm, cancel);
    box.hidden = false;
  }

  function mentionsIn(text) {
    return (config.agents || []).filter(function (agent) {
      return mentionIds.has(agent.id) && text.indexOf("@" + agent.name) !== -1;
    }).map(function (agent) { return agent.id; });
  }

  async function submitComposer(confirmCollision) {
    const form = composer();
    const id = Number(form.dataset.conversation);
    const body = $("#composer-body");
    const text = body.value;
    const conv = $("#conversation");
    const button = $("#send");
    const reply = form.dataset.mode === "reply";
    const templated = reply && form.dataset.template === "on";
    let template = null;
    if (templated) {
      template = templateReply();
      if (!template) { return; }
    } else if (!text.trim() && !(reply && files.length)) {
      body.focus();
      return;
    }
    const mail = reply ? mailFields() : null;
    if (mail === false) { return; }
    button.disabled = true;
    try {
      let message;
      if (!reply) {
        message = await api("POST", "/api/v1/conversations/" + id + "/notes", { body: text, mentions: mentionsIn(text) });
      } else {
        const channel = $("#channel-picker").value;
        const seen = Number(conv.dataset.seen) || null;
        if (files.length && !templated) {
          const data = new FormData();
          data.append("body", text);
          if (channel) { data.append("channel_account_id", channel); }
          if (seen) { data.append("seen_message_id", String(seen)); }
          data.append("confirm_collision", confirmCollision ? "true" : "false");
          if (mail) {
            data.append("to", mail.to);
            mail.cc.forEach(function (address) { data.append("cc", address); });
          }
          files.forEach(function (file) { data.append("files", file); });
          message = await api("POST", "/api/v1/conversations/" + id + "/messages/files", data);
        } else {
          const payload = {
            body: templated ? template.body : text,
            channel_account_id: channel ? Number(channel) : null,
            seen_message_id: seen,
            confirm_collision: Boolean(confirmCollision),
          };
          if (templated) { payload.template = template.template; }
          if (mail) {
            payload.to = mail.to;
            payload.cc = mail.cc;
          }
          message = await api("POST", "/api/v1/conversations/" + id + "/messages", payload);
        }
      }
      if (templated) {
        $("#template-picker").value = "";
        renderTemplate();
      } else {
        body.value = "";
        autosize(body);
        files = [];
        mentionIds = new Set();
        renderFiles();
        updateSmsCount();
      }
      hideCollision();
      const newest = $$("#timeline [data-id]").reduce(function (max, el) { return Math.max(max, Number(el.dataset.id)); }, 0);
      conv.dataset.seen = String(Math.max(newest, message.id));
      await appendNew();
      const timeline = $("#timeline");
      if (timeline) { timeline.scrollTop = timeline.scrollHeight; }
    } catch (error) {
      if (error.code === "collision") {
        showCollision();
      } else if (mail && /^(cc|to)_/.test(error.code || "")) {
        showMailError(error.message, $(error.code.indexOf("cc_") === 0 ? "#reply-cc" : "#reply-to"));
      } else if (templated && /^(whatsapp_)?template_/.test(error.code || "")) {
        showTemplateError(error.message);
      } else {
        fail(error);
      }
    } finally {
      button.disabled = false;
    }
  }

  function autosize(area) {
    area.style.height = "auto";
    area.style.height = Math.min(area.scrollHeight + 2, window.innerHeight * 0.4) + "px";
  }

  // Suggestions under the composer: @mentions (notes) and canned responses ("/shortcut")
  let suggestions = [];
  let suggestIndex = 0;
  let suggestKind = null;
  let cannedRequest = 0;

  function fold(text) { return text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase(); }

  function tokenBefore(area, sigil) {
    const before = area.value.slice(0, area.selectionStart);
    const match = new RegExp("(^|\\s)" + (sigil === "@" ? "@" : "/") + "([^\\s@/]{0,30})$").exec(before);
    return match ? match[2] : null;
  }

  function renderSuggest(items, emptyText) {
    const box = $("#suggest");
    suggestions = items;
    suggestIndex = 0;
    box.innerHTML = "";
    if (!items.length) {
      if (!emptyText) {
        box.hidden = true;
        return;
      }
      const empty = document.createElement("div");
      empty.className = "muted small";
      empty.textContent = emptyText;
      box.appendChild(empty);
    }
    items.forEach(function (item, index) {
      const button = document.createElement("button");
      button.type = "button";
      button.setAttribute("role", "option");
      button.setAttribute("aria-selected", String(index === suggestIndex));
      button.dataset.action = "pick-suggestion";
      button.dataset.index = String(index);
      const label = document.createElement("span");
      label.textContent = item.label;
      button.appendChild(label);
      if (item.detail) {
        const detail = document.createElement("small");
        detail.textContent = item.detail;
        button.appendChild(detail);
      }
      box.appendChild(button);
    });
    box.hidden = false;
  }

  function hideSuggest() {
    suggestions = [];
    suggestKind = null;
    const box = $("#suggest");
    if (box) { box.hidden = true; }
  }

  function updateSuggest(area) {
    const form = composer();
    const mention = form && form.dataset.mode === "note" ? tokenBefore(area, "@") : null;
    const canned = tokenBefore(area, "/");
    if (mention !== null) {
      suggestKind = "mention";
      const folded = fold(mention);
      renderSuggest((config.agents || []).filter(function (agent) {
        return agent.id !== me.id && fold(agent.name).split(/\s+/).concat([fold(agent.name)]).some(function (part) { return part.indexOf(folded) === 0; });
      }).slice(0, 8).map(function (agent) { return { label: agent.name, agent: agent }; }), t("No agent matches."));
    } else if (canned !== null) {
      suggestKind = "canned";
      const request = ++cannedRequest;
      const id = conversationId();
      api("GET", "/api/v1/canned-responses?limit=8&q=" + encodeURIComponent(canned) + (id ? "&conversation_id=" + id : ""))
        .then(function (items) {
          if (request !== cannedRequest || suggestKind !== "canned") { return; }
          renderSuggest(items.map(function (item) {
            return { label: "/" + item.shortcut + " · " + item.title, detail: item.rendered || item.body, text: item.rendered || item.body };
          }), null);
        }, function () { hideSuggest(); });
    } else {
      hideSuggest();
    }
  }

  function pickSuggestion(index) {
    const item = suggestions[index];
    const area = $("#composer-body");
    if (!item || !area) { return; }
    const caret = area.selectionStart;
    let before;
    if (suggestKind === "mention") {
      before = area.value.slice(0, caret).replace(/@([^\s@/]{0,30})$/, "@" + item.agent.name + " ");
      mentionIds.add(item.agent.id);
    } else {
      before = area.value.slice(0, caret).replace(/\/([^\s@/]{0,30})$/, item.text);
    }
    area.value = before + area.value.slice(caret);
    area.selectionStart = area.selectionEnd = before.length;
    hideSuggest();
    autosize(area);
    area.focus();
  }

  document.addEventListener("input", function (event) {
    const area = event.target;
    if (area.closest && area.closest("#template-vars")) {
      updateTemplatePreview();
      showTemplateError(null);
      return;
    }
    if (area.id === "reply-to" || area.id === "reply-cc") {
      showMailError(null);
      return;
    }
    if (area.id === "composer-body") {
      autosize(area);
      updateSuggest(area);
      updateSmsCount();
      const id = conversationId();
      if (id && Date.now() - lastTyping > 3000) {
        lastTyping = Date.now();
        send({ type: "typing", conversation_id: id });
      }
    }
  });

  document.addEventListener("change", function (event) {
    const el = event.target;
    if (el.matches("#composer input[type=file]")) {
      files = files.concat(Array.prototype.slice.call(el.files));
      el.value = "";
      renderFiles();
    } else if (el.id === "channel-picker") {
      refreshComposer();
    } else if (el.id === "template-picker") {
      renderTemplate();
    } else if (el.matches("[data-patch]")) {
      const field = el.dataset.patch;
      const value = el.value === "" ? null : field === "priority" ? el.value : Number(el.value);
      patchConversation({ [field]: value });
    } else if (el.matches(".row-check")) {
      updateBulk();
    } else if (el.matches("[data-bulk]")) {
      bulkChange(el);
    } else if (el.matches("[data-agent-patch]")) {
      api("PATCH", "/api/v1/agents/" + el.dataset.agent, { [el.dataset.agentPatch]: el.value }).then(function () { toast(t("Saved.")); }, fail);
    } else if (el.matches("select[data-action=channel-kind]")) {
      const form = el.closest("form");
      $$(".kind-fields", form).forEach(function (set) {
        const on = set.dataset.kind === el.value;
        set.hidden = !on;
        set.disabled = !on;
      });
    }
  });

  // -- Conversation actions -------------------------------------------------------------------

  async function patchConversation(changes) {
    const id = conversationId();
    if (!id) { return; }
    try {
      await api("PATCH", "/api/v1/conversations/" + id, changes);
      refreshHeader();
      appendNew();
      refreshList();
    } catch (error) {
      fail(error);
      refreshHeader();
    }
  }

  function currentLabels() {
    const header = $("#conv-header");
    return header ? JSON.parse(header.dataset.labels || "[]") : [];
  }

  function localInput(date) {
    const pad = function (n) { return String(n).padStart(2, "0"); };
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) + "T" + pad(date.getHours()) + ":" + pad(date.getMinutes());
  }

  function snoozePreset(name) {
    const when = new Date();
    if (name === "hour") {
      when.setHours(when.getHours() + 1);
    } else if (name === "tomorrow") {
      when.setDate(when.getDate() + 1);
      when.setHours(9, 0, 0, 0);
    } else {
      when.setDate(when.getDate() + ((8 - when.getDay()) % 7 || 7));
      when.setHours(9, 0, 0, 0);
    }
    return when;
  }

  function openDialog(id) {
    const dialog = document.getElementById(id);
    if (dialog && !dialog.open) { dialog.showModal(); }
    return dialog;
  }

  // -- Selection and bulk actions -------------------------------------------------------------

  function selectedIds() { return $$(".row-check:checked").map(function (box) { return Number(box.value); }); }

  function updateBulk() {
    const ids = selectedIds();
    const bulk = $("#bulk");
    const list = listEl();
    if (!bulk || !list) { return; }
    bulk.hidden = ids.length === 0;
    list.classList.toggle("selecting", ids.length > 0);
    $("#bulk-count").textContent = String(ids.length);
  }

  async function bulkApply(makeChanges) {
    const ids = selectedIds();
    let done = 0;
    for (const id of ids) {
      try {
        await api("PATCH", "/api/v1/conversations/" + id, makeChanges(id));
        done += 1;
      } catch (error) {
        fail(error);
      }
    }
    $$(".row-check:checked").forEach(function (box) { box.checked = false; });
    updateBulk();
    toast(tn("{n} conversation updated.", "{n} conversations updated.", done));
    refreshList();
    refreshSidebar();
    if (conversationId() && ids.indexOf(conversationId()) !== -1) {
      refreshHeader();
      appendNew();
    }
  }

  function bulkChange(select) {
    const value = select.value;
    const field = select.dataset.bulk;
    select.value = "";
    if (!value) { return; }
    if (field === "assignee_id") {
      const agent = value === "me" ? me.id : value === "none" ? null : Number(value);
      bulkApply(function () { return { assignee_id: agent }; });
    } else {
      bulkApply(function () { return { [field]: value }; });
    }
  }

  // -- Notifications --------------------------------------------------------------------------

  let unreadNotifications = 0;

  function setBell(count) {
    unreadNotifications = Math.max(0, count);
    const badge = $("#bell-count");
    if (!badge) { return; }
    badge.textContent = unreadNotifications > 99 ? "99+" : String(unreadNotifications);
    badge.hidden = unreadNotifications === 0;
  }

  function loadNotificationCount() {
    api("GET", "/api/v1/notifications?unread=true&limit=1").then(function (data) { setBell(data.unread); }, function () {});
  }

  function notificationTitle(n) {
    const own = window.hiloNotificationTitle && window.hiloNotificationTitle(n);  // workspace.js: SLA, scheduled
    if (own) { return own; }
    if (n.kind === "mention") {
      const actor = (config.agents || []).find(function (a) { return a.id === n.actor_agent_id; });
      return t("{name} mentioned you", { name: actor ? actor.name : "" });
    }
    if (n.kind === "assigned") { return t("Assigned to you"); }
    return t("New reply from {name}", { name: customerName(n) });
  }

  // The name the pages give the contact (rendering.contact_label): its own, else one made from its id.
  function customerName(n) {
    return n.contact_name || (n.contact_id ? t("Contact {id}", { id: n.contact_id }) : "");
  }

  function onNotification(n) {
    if (!n) { return; }
    setBell(unreadNotifications + 1);
    const title = notificationTitle(n);
    const body = (customerName(n) ? customerName(n) + " · " : "") + (n.preview || "");
    const open = function () {
      api("POST", "/api/v1/notifications/read", { ids: [n.id] }).catch(function () {});
      openConversation(n.conversation_id);
    };
    if (!(n.kind === "reply" && n.conversation_id === conversationId() && !document.hidden)) {
      toast(title + (body ? " — " + body : ""), { link: { href: "/inbox?c=" + n.conversation_id, label: t("Open it"), open: open }, timeout: 8000 });
    }
    if (document.hidden && "Notification" in window && Notification.permission === "granted") {
      const shown = new Notification(title, { body: body, tag: "hilo-" + n.id, icon: "/static/favicon.svg" });
      shown.onclick = function () {
        window.focus();
        open();
        shown.close();
      };
    }
  }

  async function toggleNotifications(button) {
    const pop = $("#notifications");
    const opening = pop.hidden;
    closePopovers();
    if (!opening) { return; }
    pop.hidden = false;
    button.setAttribute("aria-expanded", "true");
    const html = await fragment("/ui/notifications");
    if (html !== null) {
      pop.innerHTML = "";
      pop.appendChild(nodesFrom(html));
      settle(pop);
    }
  }

  function closePopovers() {
    $$(".popover").forEach(function (pop) { pop.hidden = true; });
    $$("[aria-expanded=true]").forEach(function (button) { button.setAttribute("aria-expanded", "false"); });
  }

  // -- Clicks ---------------------------------------------------------------------------------

  const actions = {
    "menu": function (el) {
      const pop = document.getElementById(el.dataset.menu);
      const opening = pop.hidden;
      closePopovers();
      if (opening) {
        pop.hidden = false;
        el.setAttribute("aria-expanded", "true");
      }
    },
    "notifications": function (el) { toggleNotifications(el); },
    "read-all-notifications": async function () {
      await api("POST", "/api/v1/notifications/read", {}).catch(fail);
      setBell(0);
      $$("#notifications .notif.unread").forEach(function (item) { item.classList.remove("unread"); });
    },
    "enable-notifications": function () {
      closePopovers();
      if ("Notification" in window) { Notification.requestPermission(); }
    },
    "help": function () {
      closePopovers();
      openDialog("help-dialog");
    },
    "locale": async function (el) {
      try {
        await api("PATCH", "/api/v1/auth/me", { locale: el.dataset.locale });
        window.location.reload();
      } catch (error) { fail(error); }
    },
    "logout": async function () {
      if (viewing) { send({ type: "left", conversation_id: viewing }); }
      await api("POST", "/api/v1/auth/logout").catch(function () {});
      window.location.assign("/login");
    },
    "toggle-sidebar": function () { document.body.classList.toggle("sidebar-open"); },
    "toggle-context": function () {
      closePopovers();
      if (window.matchMedia("(max-width: 1280px)").matches) {
        document.body.classList.remove("context-hidden");
        document.body.classList.toggle("context-shown");
      } else {
        document.body.classList.remove("context-shown");
        document.body.classList.toggle("context-hidden");
      }
    },
    "back": function () {
      const app = $("#app");
      app.dataset.pane = "list";
      const list = listEl();
      if (list) { history.pushState({}, "", "/inbox?" + list.dataset.query); }
    },
    "status": function (el) {
      closePopovers();
      patchConversation({ status: el.dataset.status });
    },
    "snooze": function () {
      closePopovers();
      const dialog = openDialog("snooze-dialog");
      if (dialog) { dialog.querySelector("input[name=until]").value = localInput(snoozePreset("tomorrow")); }
    },
    "merge-conversation": function () {
      closePopovers();
      const dialog = openDialog("merge-dialog");
      if (dialog) {
        const input = dialog.querySelector("input[type=search]");
        input.focus();
        window.htmx.trigger(input, "merge-open");
      }
    },
    "merge-into": async function (el) {
      const source = conversationId();
      const target = Number(el.dataset.target);
      if (!window.confirm(t("Merge this conversation into #{id}? Its messages move there.", { id: target }))) { return; }
      try {
        await api("POST", "/api/v1/conversations/" + target + "/merge", { source_id: source });
        $("#merge-dialog").close();
        openConversation(target);
        refreshList();
      } catch (error) { fail(error); }
    },
    "split": async function (el) {
      if (!window.confirm(t("Move this message and everything after it to a new conversation?"))) { return; }
      try {
        const created = await api("POST", "/api/v1/conversations/" + conversationId() + "/split", { from_message_id: Number(el.dataset.message) });
        openConversation(created.id);
        refreshList();
      } catch (error) { fail(error); }
    },
    "retry": async function (el) {
      el.disabled = true;
      try {
        await api("POST", "/api/v1/conversations/" + conversationId() + "/messages/" + el.dataset.message + "/retry");
        replaceMessage(el.dataset.message);
      } catch (error) {
        el.disabled = false;
        fail(error);
      }
    },
    "remove-label": function (el) {
      patchConversation({ labels: currentLabels().filter(function (name) { return name !== el.dataset.label; }) });
    },
    "merge-contact": function () {
      const dialog = openDialog("contact-merge-dialog");
      if (dialog) { dialog.querySelector("input[type=search]").focus(); }
    },
    "merge-contact-into": async function (el) {
      const target = Number($("#context").dataset.contact);
      if (!window.confirm(t("Merge {name} into this contact? Identities and conversations move here.", { name: el.dataset.name }))) { return; }
      try {
        await api("POST", "/api/v1/contacts/" + target + "/merge", { source_id: Number(el.dataset.source) });
        $("#contact-merge-dialog").close();
        refresh({ list: true, header: true, context: true, history: true });
      } catch (error) { fail(error); }
    },
    "remove-attribute": async function (el) {
      const contact = $("#context").dataset.contact;
      try {
        await api("PATCH", "/api/v1/contacts/" + contact, { custom_attributes: { [el.dataset.key]: null } });
        refreshContext();
      } catch (error) { fail(error); }
    },
    "send-anyway": function () { submitComposer(true); },
    "toggle-template": function () {
      templateWanted = !templateWanted;
      refreshComposer();
      const target = templateWanted ? $("#template-picker") : $("#composer-body");
      if (target) { target.focus(); }
    },
    "quote-jump": function (el) {
      const target = document.getElementById("m-" + el.dataset.message);
      if (!target) {
        toast(t("The quoted message is further back: show earlier messages to see it."));
        return;
      }
      target.scrollIntoView({ block: "center", behavior: "smooth" });
      target.classList.remove("flash");
      void target.offsetWidth;
      target.classList.add("flash");
      setTimeout(function () { target.classList.remove("flash"); }, 1700);
    },
    "cancel-collision": function () {
      hideCollision();
      const conv = $("#conversation");
      const newest = $$("#timeline [data-id]").reduce(function (max, el) { return Math.max(max, Number(el.dataset.id)); }, 0);
      conv.dataset.seen = String(newest);
    },
    "pick-suggestion": function (el) { pickSuggestion(Number(el.dataset.index)); },
    "clear-selection": function () {
      $$(".row-check:checked").forEach(function (box) { box.checked = false; });
      updateBulk();
    },
    "save-view": async function () {
      const list = listEl();
      const name = window.prompt(t("Name of the view"));
      if (!name || !name.trim()) { return; }
      try {
        const view = await api("POST", "/api/v1/views", { name: name.trim(), filters: JSON.parse(list.dataset.filters), sort: list.dataset.sort });
        await window.htmx.ajax("GET", "/ui/list?view=" + view.key, { target: "#list-pane", swap: "innerHTML" });
        refreshSidebar();
      } catch (error) { fail(error); }
    },
    "delete-view": async function (el) {
      if (!window.confirm(t("Delete this view?"))) { return; }
      try {
        await api("DELETE", "/api/v1/views/" + el.dataset.viewId);
        await window.htmx.ajax("GET", "/ui/list?view=mine", { target: "#list-pane", swap: "innerHTML" });
        refreshSidebar();
      } catch (error) { fail(error); }
    },
    "close-dialog": function (el) { el.closest("dialog").close(); },
    "open-dialog": function (el) { openDialog(el.dataset.dialog); },
    "copy": function (el) {
      const input = el.parentElement.querySelector("input");
      navigator.clipboard.writeText(input.value).then(function () { toast(t("Copied.")); }, function () {
        input.select();
      });
    },
    "reload": function () { window.location.reload(); },
    "token-revoke": async function (el) {
      if (!window.confirm(t("Revoke the token {name}? Anything that uses it stops working at once.", { name: el.dataset.name }))) { return; }
      try {
        await api("DELETE", "/api/v1/auth/tokens/" + el.dataset.token);
        window.location.reload();
      } catch (error) { fail(error); }
    },
    "invitation-revoke": async function (el) {
      try {
        await api("DELETE", "/api/v1/agents/invitations/" + el.dataset.invitation);
        window.location.reload();
      } catch (error) { fail(error); }
    },
    "session-revoke": async function (el) {
      try {
        await api("DELETE", "/api/v1/auth/sessions/" + el.dataset.session);
        window.location.reload();
      } catch (error) { fail(error); }
    },
    "channel-check": async function (el) {
      const result = $("[data-check-result='" + el.dataset.channel + "']");
      const label = el.innerHTML;
      el.disabled = true;
      el.textContent = el.dataset.busy;
      try {
        const check = await api("POST", "/api/v1/channels/" + el.dataset.channel + "/check");
        result.textContent = check.message;
        result.className = "check-result " + (check.ok ? "check-ok" : "check-failed");
        result.dataset.code = check.code;
        result.hidden = false;
        const form = $("form[data-channel='" + el.dataset.channel + "']");
        if (form) { clearFieldErrors(form); }
        const input = form && check.setting && form.querySelector("input[name='settings." + check.setting + "']");
        if (input) { input.setAttribute("aria-invalid", "true"); }
      } catch (error) {
        result.textContent = error.message;
        result.className = "check-result check-failed";
        result.hidden = false;
      } finally {
        el.disabled = false;
        el.innerHTML = label;
      }
    },
    "channel-enabled": async function (el) {
      try {
        await api("PATCH", "/api/v1/channels/" + el.dataset.channel, { enabled: el.dataset.enabled === "true" });
        window.location.reload();
      } catch (error) { fail(error); }
    },
  };

  document.addEventListener("click", function (event) {
    const target = event.target.closest("[data-action], [data-snooze], [data-agent-toggle], [data-notification]");
    if (!target) {
      if (!event.target.closest(".popover")) { closePopovers(); }
      return;
    }
    if (target.dataset.snooze) {
      // A preset snoozes at once; the date field below is for any other time.
      const dialog = target.closest("dialog");
      if (dialog) { dialog.close(); }
      patchConversation({ status: "snoozed", snoozed_until: snoozePreset(target.dataset.snooze).toISOString() });
      return;
    }
    if (target.dataset.agentToggle) {
      if (target.dataset.active === "false") {
        // Deactivating asks what happens to the agent's conversations first.
        const form = $("form[data-form=agent-deactivate]");
        form.dataset.agent = target.dataset.agentToggle;
        openDialog("agent-deactivate");
        return;
      }
      api("PATCH", "/api/v1/agents/" + target.dataset.agentToggle, { active: true })
        .then(function () { window.location.reload(); }, fail);
      return;
    }
    if (target.dataset.notification) {
      api("POST", "/api/v1/notifications/read", { ids: [Number(target.dataset.notification)] }).catch(function () {});
      closePopovers();
      return;
    }
    const action = actions[target.dataset.action];
    if (action) {
      event.preventDefault();
      action(target, event);
    }
  });

  document.addEventListener("click", function (event) {
    const tab = event.target.closest(".tabs [data-mode]");
    if (tab) {
      setMode(tab.dataset.mode);
      $("#composer-body").focus();
    }
  });

  // -- Forms ----------------------------------------------------------------------------------

  function formError(form, error) {
    const box = $(".form-error", form);
    if (box) {
      box.textContent = error.message;
      box.hidden = false;
    } else {
      fail(error);
    }
  }

  // Mark the fields an API error names (`details[].field`): a required one shows its own
  // "required" text next to it, any other the error's message.
  function clearFieldErrors(form) {
    $$("[data-error-for]", form).forEach(function (box) { box.hidden = true; });
    $$("[aria-invalid]", form).forEach(function (input) { input.removeAttribute("aria-invalid"); });
  }

  function fieldErrors(form, error) {
    clearFieldErrors(form);
    let first = null;
    (error.details || []).forEach(function (detail) {
      const input = detail.field && form.querySelector("input[name='" + detail.field + "']:not(:disabled)");
      if (!input || input.closest("fieldset[disabled]")) { return; }
      input.setAttribute("aria-invalid", "true");
      const box = input.parentElement.querySelector("[data-error-for='" + detail.field + "']");
      if (box) {
        if (detail.code !== "required") { box.textContent = error.message; }
        box.hidden = false;
      }
      if (!first) { first = input; }
    });
    if (first) { first.focus(); }
  }

  // A new channel gets every field filled in; a saved one only the fields the admin changed, so
  // a setting the page cannot show exactly (or that changed meanwhile) is never written back.
  // A changed field left empty clears that setting.
  function settingsOf(form, changedOnly) {
    const settings = {};
    $$("input[name^='settings.']", form).forEach(function (input) {
      if (input.disabled || input.closest("fieldset[disabled]")) { return; }
      const value = input.value.trim();
      if (changedOnly ? value !== input.defaultValue.trim() : value !== "") { settings[input.name.slice(9)] = value; }
    });
    return settings;
  }

  const forms = {
    "add-label": function (form) {
      const name = form.label.value.trim().toLowerCase();
      if (!name) { return; }
      form.label.value = "";
      const labels = currentLabels();
      if (labels.indexOf(name) === -1) { labels.push(name); }
      patchConversation({ labels: labels });
    },
    "snooze": function (form) {
      const until = new Date(form.until.value);
      if (isNaN(until) || until <= new Date()) {
        toast(t("Choose a time in the future to snooze until."), { error: true });
        return;
      }
      form.closest("dialog").close();
      patchConversation({ status: "snoozed", snoozed_until: until.toISOString() });
    },
    "contact-name": async function (form) {
      const contact = $("#context").dataset.contact;
      try {
        await api("PATCH", "/api/v1/contacts/" + contact, { name: form.name.value });
        toast(t("Saved."));
        refreshHeader();
        refreshList();
      } catch (error) { fail(error); }
    },
    "attributes": async function (form) {
      const contact = $("#context").dataset.contact;
      const attributes = {};
      $$(".attr input", form).forEach(function (input) {
        if (input.name === "__key" || input.name === "__value") { return; }
        let value = input.value;
        if (input.dataset.json) {
          try { value = JSON.parse(value); } catch (_err) { value = input.value; }
        }
        attributes[input.name] = value;
      });
      const key = form.__key.value.trim();
      if (key) { attributes[key] = form.__value.value; }
      try {
        await api("PATCH", "/api/v1/contacts/" + contact, { custom_attributes: attributes });
        toast(t("Saved."));
        refreshContext();
      } catch (error) { fail(error); }
    },
    "split-contact": async function (form) {
      const ids = $$("input[name=identity]:checked", form).map(function (box) { return Number(box.value); });
      if (!ids.length || !window.confirm(t("Move the selected identities to a new contact?"))) { return; }
      try {
        await api("POST", "/api/v1/contacts/" + $("#context").dataset.contact + "/split", { identity_ids: ids });
        refreshContext();
        refreshHeader();
        refreshList();
      } catch (error) { fail(error); }
    },
    "bulk-label": function (form) {
      const name = form.label.value.trim().toLowerCase();
      if (!name) { return; }
      form.label.value = "";
      bulkApply(function (id) {
        const row = $("#row-" + id);
        const labels = row ? JSON.parse(row.dataset.labels || "[]") : [];
        if (labels.indexOf(name) === -1) { labels.push(name); }
        return { labels: labels };
      });
    },
    "channel-add": async function (form) {
      try {
        clearFieldErrors(form);
        const created = await api("POST", "/api/v1/channels", { kind: form.kind.value, name: form.name.value, settings: settingsOf(form, false) });
        form.closest("dialog").close();
        if (created.secret) {
          $("#channel-secret-value").value = created.secret;
          openDialog("channel-secret");
        } else {
          window.location.reload();
        }
      } catch (error) {
        formError(form, error);
        fieldErrors(form, error);
      }
    },
    "channel-settings": async function (form) {
      const changes = { settings: settingsOf(form, true) };
      if (form.name.value !== form.name.defaultValue) { changes.name = form.name.value; }
      try {
        await api("PATCH", "/api/v1/channels/" + form.dataset.channel, changes);
        window.location.reload();
      } catch (error) {
        formError(form, error);
        fieldErrors(form, error);
      }
    },
    "agent-add": async function (form) {
      try {
        await api("POST", "/api/v1/agents", {
          name: form.name.value, email: form.email.value, password: form.password.value, role: form.role.value, locale: form.locale.value,
        });
        window.location.reload();
      } catch (error) { formError(form, error); }
    },
    "account-settings": async function (form) {
      try {
        await api("PUT", "/api/v1/admin/account-settings", { require_two_factor: form.require_two_factor.checked });
        toast(t("Saved."));
      } catch (error) { fail(error); }
    },
    "agent-invite": async function (form) {
      try {
        const invited = await api("POST", "/api/v1/agents/invitations", {
          name: form.name.value, email: form.email.value, role: form.role.value, locale: form.locale.value,
        });
        form.closest("dialog").close();
        if (invited.link) {
          $("#invitation-link-value").value = invited.link;
          openDialog("invitation-link");
        } else {
          window.location.reload();
        }
      } catch (error) { formError(form, error); }
    },
    "agent-deactivate": async function (form) {
      try {
        await api("PATCH", "/api/v1/agents/" + form.dataset.agent, {
          active: false, conversations: form.querySelector("input[name=conversations]:checked").value,
        });
        window.location.reload();
      } catch (error) { formError(form, error); }
    },
    "account-language": async function (form) {
      try {
        await api("PATCH", "/api/v1/auth/me", { locale: form.locale.value });
        window.location.reload();
      } catch (error) { formError(form, error); }
    },
    "account-password": async function (form) {
      $(".form-error", form).hidden = true;
      try {
        await api("PATCH", "/api/v1/auth/me", { password: form.password.value, current_password: form.current_password.value });
        form.reset();
        toast(t("Password changed. Every other browser where you were signed in is signed out."));
      } catch (error) { formError(form, error); }
    },
    "token-add": async function (form) {
      try {
        const created = await api("POST", "/api/v1/auth/tokens", { name: form.name.value });
        form.closest("dialog").close();
        $("#token-secret-value").value = created.token;
        openDialog("token-secret");
      } catch (error) { formError(form, error); }
    },
    "team-add": async function (form) {
      try {
        await api("POST", "/api/v1/teams", { name: form.name.value, description: form.description.value || null });
        window.location.reload();
      } catch (error) { formError(form, error); }
    },
    "team-members": async function (form) {
      const ids = $$("input[name=member]:checked", form).map(function (box) { return Number(box.value); });
      try {
        await api("PUT", "/api/v1/teams/" + form.dataset.team + "/members", { member_ids: ids });
        toast(t("Saved."));
        await refreshFromPage(form.closest("[id]"));
      } catch (error) { fail(error); }
    },
  };

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form.id === "composer") {
      event.preventDefault();
      submitComposer(false);
      return;
    }
    const handler = forms[form.dataset.form];
    if (handler) {
      event.preventDefault();
      handler(form);
    }
  });

  // -- Keyboard shortcuts ---------------------------------------------------------------------

  let pendingG = 0;

  function moveCursor(step) {
    const rows = $$("#rows .row");
    if (!rows.length) { return; }
    const id = conversationId();
    let index = rows.findIndex(function (row) { return Number(row.dataset.id) === id; });
    index = index === -1 ? (step > 0 ? 0 : rows.length - 1) : Math.min(rows.length - 1, Math.max(0, index + step));
    const link = $(".row-link", rows[index]);
    rows[index].scrollIntoView({ block: "nearest" });
    link.click();
  }

  function goToView(key) {
    const link = $(".nav-item[data-view='" + key + "']");
    if (link) { link.click(); }
  }

  document.addEventListener("keydown", function (event) {
    const el = event.target;
    const typing = el.matches && el.matches("input, textarea, select, [contenteditable]");
    const suggest = $("#suggest");
    if (el.id === "composer-body" && suggest && !suggest.hidden && suggestions.length) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        suggestIndex = (suggestIndex + (event.key === "ArrowDown" ? 1 : suggestions.length - 1)) % suggestions.length;
        $$("button", suggest).forEach(function (b, i) { b.setAttribute("aria-selected", String(i === suggestIndex)); });
        return;
      }
      if (event.key === "Enter" || event.key === "Tab") {
        event.preventDefault();
        pickSuggestion(suggestIndex);
        return;
      }
      if (event.key === "Escape") {
        hideSuggest();
        return;
      }
    }
    if (el.id === "composer-body" && event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      submitComposer(false);
      return;
    }
    if (event.key === "Escape") {
      closePopovers();
      document.body.classList.remove("sidebar-open");
      if (typing) { el.blur(); }
      return;
    }
    if (typing || event.ctrlKey || event.metaKey || event.altKey || $("dialog[open]")) { return; }
    const key = event.key;
    if (pendingG && Date.now() - pendingG < 1200) {
      pendingG = 0;
      const views = { m: "mine", u: "unassigned", a: "all" };
      if (views[key]) {
        event.preventDefault();
        goToView(views[key]);
      }
      return;
    }
    const form = composer();
    const handlers = {
      "j": function () { moveCursor(1); },
      "k": function () { moveCursor(-1); },
      "g": function () { pendingG = Date.now(); },
      "/": function () { const q = $("#q"); if (q) { q.focus(); q.select(); } },
      "?": function () { openDialog("help-dialog"); },
      "x": function () {
        const box = $("#row-" + conversationId() + " .row-check");
        if (box) { box.checked = !box.checked; updateBulk(); }
      },
      "r": function () { if (form) { setMode("reply"); $("#composer-body").focus(); } },
      "n": function () { if (form) { setMode("note"); $("#composer-body").focus(); } },
      "e": function () { const button = $("#conv-header [data-key=e]"); if (button) { button.click(); } },
      "a": function () { if (conversationId()) { patchConversation({ assignee_id: me.id }); } },
      "s": function () { if (conversationId()) { actions.snooze(); } },
      "l": function () { const input = $("#labels input[name=label]"); if (input) { input.focus(); } },
      "i": function () { if (conversationId()) { actions["toggle-context"](); } },
    };
    if (handlers[key]) {
      event.preventDefault();
      handlers[key]();
    }
  });

  // -- htmx glue ------------------------------------------------------------------------------

  document.addEventListener("htmx:afterSettle", function (event) {
    const target = event.detail.target;
    formatTimes(target);
    if (target.id === "pane") {
      conversationOpened();
      document.body.classList.remove("sidebar-open");
    } else if (target.id === "list-pane") {
      const list = listEl();
      $$(".nav-item").forEach(function (item) {
        const active = list && item.dataset.view === list.dataset.view;
        item.classList.toggle("active", active);
        if (active) { item.setAttribute("aria-current", "page"); } else { item.removeAttribute("aria-current"); }
      });
      document.body.classList.remove("sidebar-open");
      $("#app").dataset.pane = "list";
      markActiveRow();
      updateBulk();
    }
  });

  document.addEventListener("htmx:responseError", function (event) {
    const xhr = event.detail.xhr;
    let message = t("Something went wrong; try again.");
    try {
      const body = JSON.parse(xhr.responseText);
      if (body.error && body.error.message) { message = body.error.message; }
    } catch (_err) { /* not JSON: keep the generic message */ }
    toast(message, { error: true });
  });

  document.addEventListener("htmx:sendError", function () { toast(t("Connection lost; reconnecting…"), { error: true }); });

  // -- Start ----------------------------------------------------------------------------------

  formatTimes(document);
  setInterval(function () { formatTimes(document); }, 60000);
  if (document.getElementById("app") && document.body.classList.contains("page-inbox")) {
    conversationOpened();
  }
  // The inbox page is served without unread counts (they cost a pass over the open
  // conversations); fetch them right after it shows.
  if ($("#sidebar-inner[data-counts=later]")) { refreshSidebar(); }
  loadNotificationCount();
  connect();
})();
