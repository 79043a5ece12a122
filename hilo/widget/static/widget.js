/* Hilo chat widget: one async script tag, no dependencies, styles isolated in a shadow root.
 *
 * <script async src="https://hilo.example.com/widget/TOKEN/widget.js" data-token="TOKEN"></script>
 *
 * Optional: data-locale="es", and for a signed-in user data-user-id, data-user-hash,
 * data-user-name, data-user-email, data-user-phone (or window.HiloWidget = {locale, user: {id, hash,
 * name, email, phone}}
 * set before the tag). The page can call window.Hilo.open() / .close(), and hears
 * "hilo:ready" and "hilo:message" events on window.
 */
(function () {
  "use strict";
  var CSS = "__HILO_CSS__";
  if (window.Hilo && window.Hilo.version) return;
  try {
    boot();
  } catch (err) {
    // Never break the host page.
    if (window.console) console.warn("Hilo widget could not start:", err);
  }

  function boot() {
    var script = document.currentScript || document.querySelector('script[src*="/widget/"][src$="/widget.js"]');
    if (!script) return;
    var src = new URL(script.src, location.href);
    var match = src.pathname.match(/^(.*)\/widget\/([^/]+)\/widget\.js$/);
    if (!match) return;
    var token = script.getAttribute("data-token") || match[2];
    var base = src.origin + match[1] + "/widget/" + encodeURIComponent(token);
    var root = src.origin + match[1];
    var opts = window.HiloWidget || {};
    var user = opts.user || null;
    if (!user && script.getAttribute("data-user-id")) {
      user = {
        id: script.getAttribute("data-user-id"),
        hash: script.getAttribute("data-user-hash"),
        name: script.getAttribute("data-user-name"),
        email: script.getAttribute("data-user-email"),
        phone: script.getAttribute("data-user-phone")
      };
    }
    var locale = script.getAttribute("data-locale") || opts.locale || navigator.language || "en";
    fetch(base + "/config?locale=" + encodeURIComponent(locale), { credentials: "omit" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (cfg) { if (cfg) start(cfg, { token: token, base: base, root: root, user: user }); })
      .catch(function () { /* the chat is simply not shown */ });
  }

  function start(cfg, env) {
    var S = cfg.strings;
    var KEY = "hilo:" + env.token + ":";
    var store = safeStorage(window.localStorage);
    var session = safeStorage(window.sessionStorage);

    // ---- state ---------------------------------------------------------------------------
    var messages = {};        // id -> message
    var lastId = 0;           // newest message id shown: asked for on reconnect
    var pending = loadOutbox(); // client_id -> message not yet acknowledged
    var ws = null, ready = false, retries = 0, retryTimer = null, pingTimer = null, stopped = false;
    var agentsOnline = !!cfg.agents_online;
    var teamOpen = cfg.open_now !== false; // the channel's business hours; open without a calendar
    var known = false, welcomed = false, isOpen = false, unread = 0;
    var readUpTo = 0, deliveredUpTo = 0, typingTimer = null, lastTyping = 0;
    var visitorToken = store.get(KEY + "visitor");

    // ---- DOM -------------------------------------------------------------------------------
    var host = document.createElement("div");
    host.setAttribute("data-hilo-widget", "");
    var shadow = host.attachShadow({ mode: "open" });
    var style = document.createElement("style");
    style.textContent = CSS;
    shadow.appendChild(style);
    var box = el("div", "hilo " + (cfg.position === "left" ? "left" : "right"));
    box.style.setProperty("--hilo-brand", cfg.color);
    box.style.setProperty("--hilo-on-brand", cfg.text_color);
    box.setAttribute("lang", cfg.locale);
    shadow.appendChild(box);

    var launcher = el("button", "launcher");
    launcher.type = "button";
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-controls", "hilo-panel");
    launcher.setAttribute("aria-label", S.open);
    launcher.innerHTML = '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path fill="currentColor" d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>';
    var badge = el("span", "badge");
    badge.hidden = true;
    launcher.appendChild(badge);

    var panel = el("section", "panel");
    panel.id = "hilo-panel";
    panel.hidden = true;
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-labelledby", "hilo-title");
    var header = el("header");
    var heading = el("div");
    var title = el("h2", "", cfg.title);
    title.id = "hilo-title";
    var subtitle = el("p", "sub");
    heading.appendChild(title);
    heading.appendChild(subtitle);
    var closeButton = el("button", "close", "\u00d7");
    closeButton.type = "button";
    closeButton.setAttribute("aria-label", S.close);
    header.appendChild(heading);
    header.appendChild(closeButton);
    var status = el("div", "status");
    status.setAttribute("role", "status");
    status.hidden = true;
    var log = el("ol", "log");
    log.setAttribute("role", "log");
    log.setAttribute("aria-live", "polite");
    log.setAttribute("aria-label", S.messages);
    log.tabIndex = 0;
    var typing = el("div", "typing");
    typing.setAttribute("aria-live", "polite");
    var intro = el("form", "intro");
    intro.hidden = true;
    intro.noValidate = true;
    var composer = el("form", "composer");
    composer.hidden = true;
    var inputLabel = el("label", "sr", S.composer);
    inputLabel.htmlFor = "hilo-input";
    var input = el("textarea");
    input.id = "hilo-input";
    input.rows = 1;
    input.maxLength = 5000;
    input.placeholder = S.placeholder;
    var attach = el("button", "attach");
    attach.type = "button";
    attach.setAttribute("aria-label", S.attach);
    attach.title = S.attach;
    attach.innerHTML = '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path fill="currentColor" d="M16.5 6.5v10a4.5 4.5 0 0 1-9 0V5a3 3 0 0 1 6 0v10.5a1.5 1.5 0 0 1-3 0V6.5H9v9a3 3 0 0 0 6 0V5a4.5 4.5 0 0 0-9 0v11.5a6 6 0 0 0 12 0v-10z"/></svg>';
    var file = el("input", "file");
    file.type = "file";
    file.accept = cfg.accept;
    file.hidden = true;
    file.tabIndex = -1;
    var sendButton = el("button", "send");
    sendButton.type = "submit";
    sendButton.setAttribute("aria-label", S.send);
    sendButton.innerHTML = '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path fill="currentColor" d="M2 21l21-9L2 3v7l15 2-15 2z"/></svg>';
    [inputLabel, input, attach, file, sendButton].forEach(function (n) { composer.appendChild(n); });
    [header, status, log, typing, intro, composer].forEach(function (n) { panel.appendChild(n); });
    box.appendChild(panel);
    box.appendChild(launcher);
    if (document.body) document.body.appendChild(host);
    else document.addEventListener("DOMContentLoaded", function () { document.body.appendChild(host); });

    subtitleText();
    whenOpening(cfg.next_open);

    // ---- opening and closing ---------------------------------------------------------------
    function open(fromRule) {
      if (isOpen) return;
      isOpen = true;
      panel.hidden = false;
      launcher.setAttribute("aria-expanded", "true");
      launcher.setAttribute("aria-label", S.close);
      box.classList.add("open");
      if (!fromRule) session.set(KEY + "opened", "1");
      unread = 0;
      showBadge();
      if (cfg.greeting && !log.querySelector(".greeting")) addNote(cfg.greeting, "greeting");
      connect();
      showForms();
      sendReceipts();
      scrollDown();
      setTimeout(function () { (intro.hidden ? input : intro.querySelector("input,textarea") || input).focus(); }, 0);
    }

    function close() {
      if (!isOpen) return;
      isOpen = false;
      panel.hidden = true;
      box.classList.remove("open");
      launcher.setAttribute("aria-expanded", "false");
      launcher.setAttribute("aria-label", S.open);
      launcher.focus();
    }

    launcher.addEventListener("click", function () { isOpen ? close() : open(false); });
    closeButton.addEventListener("click", close);
    panel.addEventListener("keydown", function (e) {
      if (e.key === "Escape") { e.preventDefault(); close(); }
    });

    // ---- the connection --------------------------------------------------------------------
    function connect() {
      if (ws || stopped) return;
      var url = env.base.replace(/^http/, "ws") + "/ws?locale=" + encodeURIComponent(cfg.locale);
      try {
        ws = new WebSocket(url);
      } catch (err) {
        return reconnectLater();
      }
      ws.onopen = function () {
        ws.send(JSON.stringify({
          type: "hello", visitor: visitorToken, user: env.user, last_id: lastId, locale: cfg.locale
        }));
      };
      ws.onmessage = function (e) {
        var frame;
        try { frame = JSON.parse(e.data); } catch (err) { return; }
        handle(frame);
      };
      ws.onclose = function (e) {
        ws = null;
        ready = false;
        clearInterval(pingTimer);
        Object.keys(pending).forEach(function (cid) { pending[cid].inflight = false; });
        renderPendingState();
        if (e.code === 4400 || e.code === 4403 || e.code === 4404) {
          stopped = true;
          return;
        }
        if (welcomed || isOpen) setStatus(S.reconnecting);
        reconnectLater(e.code === 4429 ? 15000 : 0);
      };
    }

    function reconnectLater(atLeast) {
      if (retryTimer || stopped) return;
      var delay = Math.max(atLeast || 0, Math.min(10000, 500 * Math.pow(2, retries++)) * (0.5 + Math.random() / 2));
      retryTimer = setTimeout(function () { retryTimer = null; connect(); }, delay);
    }

    window.addEventListener("online", function () {
      if (!ws && retryTimer) { clearTimeout(retryTimer); retryTimer = null; connect(); }
    });

    function handle(frame) {
      switch (frame.type) {
        case "welcome":
          ready = true;
          welcomed = true;
          retries = 0;
          setStatus("");
          if (frame.visitor) { visitorToken = frame.visitor; store.set(KEY + "visitor", frame.visitor); }
          known = known || frame.known;
          agentsOnline = frame.agents_online;
          subtitleText();
          showForms();
          flush();
          clearInterval(pingTimer);
          pingTimer = setInterval(function () { sendFrame({ type: "ping" }); retryStale(); }, 25000);
          break;
        case "messages":
          frame.items.forEach(addMessage);
          afterNewMessages(frame.items);
          break;
        case "ack":
          var acked = pending[frame.client_id];
          delete pending[frame.client_id];
          saveOutbox();
          addMessage(frame.message);
          afterNewMessages([frame.message]);
          if (acked && acked.offline) addNote([S.thanks, cfg.reply_time].filter(Boolean).join(" "), "thanks");
          break;
        case "error":
          onError(frame);
          break;
        case "typing":
          showTyping(frame.name);
          break;
        case "seen":
          markSeen();
          break;
        case "agents":
          agentsOnline = frame.online;
          subtitleText();
          showForms();
          break;
      }
    }

    function sendFrame(frame) {
      if (ws && ready) ws.send(JSON.stringify(frame));
    }

    function onError(frame) {
      if (!frame.client_id) {
        setStatus(frame.message || S.error);
        return;
      }
      var p = pending[frame.client_id];
      if (frame.code === "prechat_invalid" && p) {
        delete pending[frame.client_id];
        saveOutbox();
        removePending(frame.client_id);
        known = false;
        showIntro(p.offline, p, frame.fields || {});
        return;
      }
      if (p && (frame.code === "rate_limited" || frame.code === "not_stored")) {
        p.inflight = false;
        p.error = frame.message;
        renderPendingState();
        return;
      }
      if (p) {
        delete pending[frame.client_id];
        saveOutbox();
        removePending(frame.client_id);
      }
      addNote(frame.message || S.error, "error");
    }

    // ---- sending -------------------------------------------------------------------------
    function send(text, extra) {
      var p = {
        client_id: uuid(), text: text, page: location.href.slice(0, 2000),
        prechat: extra && extra.prechat, offline: !!(extra && extra.offline), at: new Date().toISOString()
      };
      pending[p.client_id] = p;
      saveOutbox();
      renderPending(p);
      known = true;
      connect();
      flush();
    }

    function flush() {
      if (!ws || !ready) return;
      Object.keys(pending).forEach(function (cid) {
        var p = pending[cid];
        if (p.inflight) return;
        p.inflight = true;
        p.sentAt = Date.now();
        ws.send(JSON.stringify({
          type: "message", client_id: p.client_id, text: p.text, prechat: p.prechat, offline: p.offline, page: p.page
        }));
      });
      renderPendingState();
    }

    function retryStale() {
      var now = Date.now();
      Object.keys(pending).forEach(function (cid) {
        if (pending[cid].inflight && now - pending[cid].sentAt > 15000) pending[cid].inflight = false;
      });
      flush();
    }

    composer.addEventListener("submit", function (e) {
      e.preventDefault();
      var text = input.value.trim();
      if (!text) return;
      input.value = "";
      autosize();
      send(text);
    });
    input.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        composer.requestSubmit ? composer.requestSubmit() : composer.dispatchEvent(new Event("submit"));
      }
    });
    input.addEventListener("input", function () {
      autosize();
      var now = Date.now();
      if (now - lastTyping > 2500) { lastTyping = now; sendFrame({ type: "typing" }); }
    });

    function autosize() {
      input.style.height = "auto";
      input.style.height = Math.min(120, input.scrollHeight) + "px";
    }

    attach.addEventListener("click", function () { file.click(); });
    file.addEventListener("change", function () {
      var chosen = file.files && file.files[0];
      file.value = "";
      if (chosen) upload(chosen);
    });

    function upload(chosen) {
      if (chosen.size > cfg.max_upload_bytes) {
        return addNote(fmt(S.too_large, { size: human(cfg.max_upload_bytes) }), "error");
      }
      var types = cfg.accept.split(",");
      if (chosen.type && types.indexOf(chosen.type) < 0) return addNote(S.bad_type, "error");
      var form = new FormData();
      if (env.user) {
        ["id", "hash", "name", "email", "phone"].forEach(function (k) { if (env.user[k]) form.append("user_" + k, env.user[k]); });
      } else if (visitorToken) {
        form.append("visitor", visitorToken);
      }
      var cid = uuid();
      form.append("client_id", cid);
      form.append("page", location.href.slice(0, 2000));
      form.append("file", chosen, chosen.name);
      var p = { client_id: cid, text: chosen.name, file: true, inflight: true };
      renderPending(p);
      fetch(env.base + "/upload?locale=" + encodeURIComponent(cfg.locale), { method: "POST", body: form, credentials: "omit" })
        .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
        .then(function (res) {
          if (!res.ok) {
            removePending(cid);
            addNote((res.body.error && res.body.error.message) || S.error, "error");
          } else {
            known = true;
            // The stored message arrives over the socket; until then the bubble stays.
            pendingNode(cid) && pendingNode(cid).setAttribute("data-id-expected", res.body.id);
          }
        })
        .catch(function () { removePending(cid); addNote(S.error, "error"); });
    }

    // ---- forms: pre-chat and offline -------------------------------------------------------
    function needsIntro() {
      if (known || env.user || Object.keys(pending).length) return null;
      if (!agentsOnline || !teamOpen) return "offline";
      var asks = Object.keys(cfg.prechat).some(function (k) { return cfg.prechat[k] !== "off"; });
      return asks ? "prechat" : null;
    }

    function showForms() {
      // Until the server says whether this visitor has chatted before, show no form at all.
      var kind = welcomed ? needsIntro() : null;
      if (kind) {
        if (intro.hidden || intro.getAttribute("data-kind") !== kind) showIntro(kind === "offline", null, {});
      } else {
        intro.hidden = true;
        composer.hidden = !welcomed;
      }
    }

    function showIntro(offline, previous, errors) {
      intro.innerHTML = "";
      intro.setAttribute("data-kind", offline ? "offline" : "prechat");
      intro.hidden = false;
      composer.hidden = true;
      var lead = el("p", "lead", offline ? S.offline_title : S.prechat);
      intro.appendChild(lead);
      if (offline) {
        intro.appendChild(el("p", "hint", [S.offline, cfg.reply_time, cfg.business_hours].filter(Boolean).join(" ")));
      }
      var rules = {};
      Object.keys(cfg.prechat).forEach(function (k) { rules[k] = cfg.prechat[k]; });
      if (offline) {
        rules.email = "required";
        if (!rules.name || rules.name === "off") rules.name = "optional";
      }
      var values = (previous && previous.prechat) || {};
      ["name", "email", "phone"].forEach(function (name) {
        if (!rules[name] || rules[name] === "off") return;
        intro.appendChild(field(name, rules[name], values[name] || "", errors[name]));
      });
      intro.appendChild(field("message", "required", previous ? previous.text : "", errors.message, true));
      var submit = el("button", "primary", offline ? S.leave : S.start);
      submit.type = "submit";
      intro.appendChild(submit);
      intro.onsubmit = function (e) {
        e.preventDefault();
        var data = {}, problems = {}, first = null;
        Object.keys(rules).forEach(function (name) {
          if (rules[name] === "off") return;
          var node = intro.querySelector('[name="' + name + '"]');
          data[name] = node.value.trim();
          if (rules[name] === "required" && !data[name]) problems[name] = S.required;
          else if (name === "email" && data[name] && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(data[name])) problems[name] = S.invalid_email;
        });
        var text = intro.querySelector('[name="message"]').value.trim();
        if (!text) problems.message = S.required;
        if (Object.keys(problems).length) {
          showIntro(offline, { prechat: data, text: text }, problems);
          first = intro.querySelector('[aria-invalid="true"]');
          if (first) first.focus();
          return;
        }
        intro.hidden = true;
        composer.hidden = false;
        send(text, { prechat: data, offline: offline });
        input.focus();
      };
    }

    function field(name, rule, value, error, multiline) {
      var wrap = el("div", "field");
      var id = "hilo-f-" + name;
      var label = el("label", "", S[name] + (rule === "optional" ? " " + S.optional : ""));
      label.htmlFor = id;
      var control = el(multiline ? "textarea" : "input");
      control.id = id;
      control.name = name;
      control.value = value;
      if (!multiline) {
        control.type = name === "email" ? "email" : name === "phone" ? "tel" : "text";
        control.autocomplete = name === "name" ? "name" : name === "email" ? "email" : "tel";
      }
      if (rule === "required") control.required = true;
      wrap.appendChild(label);
      wrap.appendChild(control);
      if (error) {
        control.setAttribute("aria-invalid", "true");
        control.setAttribute("aria-describedby", id + "-error");
        var problem = el("div", "field-error", error);
        problem.id = id + "-error";
        wrap.appendChild(problem);
      }
      return wrap;
    }

    // ---- rendering ---------------------------------------------------------------------------
    function addMessage(m) {
      if (!m || messages[m.id]) return;
      messages[m.id] = m;
      if (m.cid && pending[m.cid]) { delete pending[m.cid]; saveOutbox(); }
      if (m.cid) removePending(m.cid);
      var expected = log.querySelector('[data-id-expected="' + m.id + '"]');
      if (expected) expected.remove();
      if (m.id > lastId) lastId = m.id;
      known = true;
      var li = el("li", "msg " + (m.dir === "in" ? "mine" : "theirs"));
      li.setAttribute("data-id", m.id);
      if (m.dir === "out" && m.author) li.appendChild(el("span", "author", m.author));
      if (m.text) li.appendChild(el("div", "text", m.text));
      (m.files || []).forEach(function (f) {
        var link = el("a", "file-link");
        link.href = env.root + f.url;
        link.target = "_blank";
        link.rel = "noopener";
        if (/^image\//.test(f.type)) {
          var img = el("img");
          img.src = env.root + f.url;
          img.alt = f.name;
          img.loading = "lazy";
          link.appendChild(img);
        } else {
          link.textContent = f.name + (f.size ? " (" + human(f.size) + ")" : "");
        }
        li.appendChild(link);
      });
      var when = el("time", "", clock(m.at, cfg.locale));
      when.dateTime = m.at;
      li.appendChild(when);
      if (m.dir === "in") {
        var marker = log.querySelector(".seen");
        if (marker) marker.remove();
      }
      insertOrdered(li, m.id);
      if (m.dir === "out") markSeen(m.id);
      window.dispatchEvent(new CustomEvent("hilo:message", { detail: { id: m.id, dir: m.dir, text: m.text } }));
    }

    function insertOrdered(li, id) {
      var nodes = log.querySelectorAll("li[data-id]");
      for (var i = nodes.length - 1; i >= 0; i--) {
        if (+nodes[i].getAttribute("data-id") < id) {
          log.insertBefore(li, nodes[i].nextSibling);
          return;
        }
      }
      var firstPending = log.querySelector("li.pending");
      log.insertBefore(li, nodes.length ? nodes[0] : firstPending);
    }

    function afterNewMessages(items) {
      var newest = 0;
      items.forEach(function (m) { if (m.dir === "out" && m.id > newest) newest = m.id; });
      if (newest && !(isOpen && document.visibilityState === "visible")) {
        unread += items.filter(function (m) { return m.dir === "out" && !m.read && m.id > readUpTo; }).length;
        showBadge();
      }
      sendReceipts();
      showForms();
      scrollDown();
    }

    function sendReceipts() {
      var newest = 0;
      Object.keys(messages).forEach(function (id) { if (messages[id].dir === "out" && +id > newest) newest = +id; });
      if (!newest) return;
      if (isOpen && document.visibilityState === "visible" && newest > readUpTo) {
        readUpTo = deliveredUpTo = newest;
        sendFrame({ type: "receipt", status: "read", up_to: newest });
      } else if (newest > deliveredUpTo) {
        deliveredUpTo = newest;
        sendFrame({ type: "receipt", status: "delivered", up_to: newest });
      }
    }
    document.addEventListener("visibilitychange", sendReceipts);

    function renderPending(p) {
      removePending(p.client_id);
      var li = el("li", "msg mine pending");
      li.setAttribute("data-cid", p.client_id);
      li.appendChild(el("div", "text", p.text));
      li.appendChild(el("span", "state", S.sending));
      log.appendChild(li);
      scrollDown();
    }

    function renderPendingState() {
      Object.keys(pending).forEach(function (cid) {
        var node = pendingNode(cid);
        if (!node) { renderPending(pending[cid]); node = pendingNode(cid); }
        var state = node.querySelector(".state");
        state.textContent = pending[cid].error || (ws && ready ? S.sending : S.queued);
      });
    }

    function pendingNode(cid) { return log.querySelector('li.pending[data-cid="' + cid + '"]'); }
    function removePending(cid) { var n = pendingNode(cid); if (n) n.remove(); }

    function markSeen(upTo) {
      var mine = log.querySelectorAll("li.mine[data-id]");
      if (!mine.length) return;
      var last = mine[mine.length - 1];
      if (upTo && +last.getAttribute("data-id") > upTo) return;
      var old = log.querySelector(".seen");
      if (old) old.remove();
      last.appendChild(el("span", "seen", S.seen));
    }

    function showTyping(name) {
      typing.textContent = fmt(S.typing, { name: name || cfg.title });
      clearTimeout(typingTimer);
      typingTimer = setTimeout(function () { typing.textContent = ""; }, 6000);
    }

    function addNote(text, kind) {
      var li = el("li", "note " + (kind || ""));
      if (kind === "error") li.setAttribute("role", "alert");
      li.appendChild(el("div", "text", text));
      if (kind === "greeting") log.insertBefore(li, log.firstChild);
      else log.appendChild(li);
      scrollDown();
    }

    function showBadge() {
      badge.hidden = unread === 0;
      badge.textContent = unread > 9 ? "9+" : String(unread);
      launcher.setAttribute("aria-label", unread && !isOpen ? S.open + " (" + S.unread + ": " + unread + ")" : isOpen ? S.close : S.open);
    }

    function subtitleText() {
      subtitle.textContent = agentsOnline && teamOpen
        ? cfg.reply_time || ""
        : [S.offline_title, cfg.next_open_text || cfg.business_hours].filter(Boolean).join(" · ");
    }

    // Business hours: at the next opening, ask the server again (its clock and calendar decide).
    function whenOpening(at) {
      if (!at) return;
      var wait = Date.parse(at) - Date.now();
      wait = wait > 60000 ? Math.min(wait, 2e9) : 60000; // a clock skew never makes it spin
      setTimeout(function () {
        fetch(env.base + "/config?locale=" + encodeURIComponent(cfg.locale), { credentials: "omit" })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (fresh) {
            if (!fresh) return;
            ["reply_time", "business_hours", "next_open_text"].forEach(function (k) { cfg[k] = fresh[k]; });
            teamOpen = fresh.open_now !== false;
            subtitleText();
            showForms();
            whenOpening(fresh.next_open);
          })
          .catch(function () { whenOpening(at); });
      }, wait);
    }

    function setStatus(text) {
      status.textContent = text;
      status.hidden = !text;
    }

    function scrollDown() { log.scrollTop = log.scrollHeight; }

    // ---- proactive messages --------------------------------------------------------------------
    function proactive() {
      var visits = +(store.get(KEY + "visits") || 0);
      if (!session.get(KEY + "session")) {
        visits += 1;
        store.set(KEY + "visits", String(visits));
        session.set(KEY + "session", "1");
      }
      (cfg.proactive || []).forEach(function (rule, i) {
        if (session.get(KEY + "fired" + i)) return;
        if (rule.url && !glob(rule.url).test(location.href)) return;
        if (rule.returning === true && visits < 2) return;
        if (rule.returning === false && visits > 1) return;
        setTimeout(function () {
          if (isOpen || session.get(KEY + "opened") || session.get(KEY + "fired" + i)) return;
          session.set(KEY + "fired" + i, "1");
          addNote(rule.message, "proactive");
          open(true);
        }, Math.max(0, rule.after_seconds || 0) * 1000);
      });
    }

    function glob(pattern) {
      return new RegExp("^" + pattern.split("*").map(function (s) {
        return s.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
      }).join(".*") + "$");
    }

    // ---- helpers -------------------------------------------------------------------------------
    function loadOutbox() {
      try { return JSON.parse(store.get(KEY + "outbox") || "{}") || {}; } catch (err) { return {}; }
    }

    function saveOutbox() {
      var plain = {};
      Object.keys(pending).forEach(function (cid) {
        var p = pending[cid];
        plain[cid] = { client_id: p.client_id, text: p.text, page: p.page, prechat: p.prechat, offline: p.offline, at: p.at };
      });
      store.set(KEY + "outbox", JSON.stringify(plain));
    }

    window.Hilo = { version: 1, open: function () { open(false); }, close: close };
    Object.keys(pending).forEach(function (cid) { pending[cid].inflight = false; renderPending(pending[cid]); });
    // A returning visitor (or a signed-in user) connects at once, to get replies sent while away.
    if (visitorToken || env.user || Object.keys(pending).length) connect();
    proactive();
    window.dispatchEvent(new CustomEvent("hilo:ready"));
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  function fmt(text, values) {
    return String(text).replace(/\{(\w+)\}/g, function (all, k) { return values[k] != null ? values[k] : all; });
  }

  function human(size) {
    return size >= 1048576 ? Math.round(size / 1048576) + " MB" : Math.max(1, Math.round(size / 1024)) + " KB";
  }

  // The time of a message in the widget's language (the one the agent UI writes: CLDR's short time).
  function clock(iso, locale) {
    var d = new Date(iso);
    return isNaN(d) ? "" : d.toLocaleTimeString(locale === "es" ? "es-ES" : "en-GB", { timeStyle: "short" });
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function safeStorage(area) {
    // Storage may be blocked (private mode, sandboxed iframes): the chat still works, it just forgets.
    return {
      get: function (k) { try { return area.getItem(k); } catch (err) { return null; } },
      set: function (k, v) { try { area.setItem(k, v); } catch (err) { /* not kept */ } }
    };
  }
})();
