/* Hilo administration of routing, business hours, SLA policies and automation.
 *
 * The server renders each page with its data (in #admin-data); this file fills the
 * editors, checks what it can before sending, calls the REST API and puts the API's
 * refusals next to the field they are about. Loaded only by these admin pages. */
(function () {
  "use strict";

  const data = JSON.parse(document.getElementById("admin-data").textContent);
  const config = JSON.parse(document.getElementById("hilo-config").textContent);
  const strings = data.strings || {};
  const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
  const CLOCK = /^([01]\d|2[0-3]):[0-5]\d$|^24:00$/;
  const FLASH = "hilo-admin-flash";
  const $ = function (selector, root) { return (root || document).querySelector(selector); };
  const $$ = function (selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); };

  function t(msgid, values) {
    let text = strings[msgid] || msgid;
    Object.keys(values || {}).forEach(function (key) { text = text.split("{" + key + "}").join(String(values[key])); });
    return text;
  }

  // A text about n things in the form n takes (ngettext; the page carries the forms).
  // Spanish and English have two forms: gettext's first is CLDR's "one".
  const pluralRule = new Intl.PluralRules(config.me && config.me.locale === "es" ? "es-ES" : "en-GB");
  function tn(singular, plural, n, values) {
    const forms = (data.plurals || {})[singular] || [singular, plural];
    const text = forms[pluralRule.select(n) === "one" ? 0 : forms.length - 1];
    return t(text, Object.assign({ n: n }, values));
  }

  // -- REST -------------------------------------------------------------------------------

  async function api(method, path, body) {
    const headers = { "Accept": "application/json", "X-CSRF-Token": config.csrf };
    const init = { method: method, headers: headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    if (response.status === 401) {
      window.location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
    }
    const payload = response.status === 204 ? null : await response.json().catch(function () { return null; });
    if (!response.ok) {
      const error = payload && payload.error ? payload.error : {};
      const failure = new Error(error.message || t("Something went wrong; try again."));
      failure.status = response.status;
      failure.code = error.code;
      failure.details = error.details;
      throw failure;
    }
    return payload;
  }

  // A refusal found before sending, shaped like the API's so both are shown the same way.
  function invalid(field, message) {
    const failure = new Error(message);
    failure.code = "client_invalid";
    failure.field = field;
    return failure;
  }

  function toast(message, isError) {
    const box = document.createElement("div");
    box.className = "toast" + (isError ? " toast-error" : "");
    box.textContent = message;
    const toasts = document.getElementById("toasts");
    if (toasts) { toasts.appendChild(box); }
    setTimeout(function () { box.remove(); }, 5000);
  }

  // After a change the page is rendered again by the server; the confirmation survives the reload.
  function reloadWith(message) {
    try { sessionStorage.setItem(FLASH, message); } catch (_err) { /* private mode: no message */ }
    window.location.reload();
  }

  // -- Errors next to the fields they are about -------------------------------------------

  function visible(el) { return !el.closest("[hidden]"); }

  function scopeOf(form) { return form.closest("[data-error-scope]") || form; }

  // The element marked data-field="a.b.c", else "a.b", else "a" (the API names nested fields).
  function fieldBox(form, name) {
    const scope = scopeOf(form);
    let key = String(name || "");
    while (key) {
      const found = $$("[data-field]", scope).filter(function (el) {
        return el.dataset.field === key && visible(el);
      });
      if (found.length) { return found[0]; }
      key = key.indexOf(".") === -1 ? "" : key.slice(0, key.lastIndexOf("."));
    }
    return null;
  }

  function clearErrors(form) {
    $$(".field-error", scopeOf(form)).forEach(function (el) { el.remove(); });
    $$("[aria-invalid]", scopeOf(form)).forEach(function (el) {
      el.removeAttribute("aria-invalid");
      const described = (el.getAttribute("aria-describedby") || "").split(" ").filter(function (id) { return id.indexOf("err-") !== 0; });
      if (described.length) { el.setAttribute("aria-describedby", described.join(" ")); } else { el.removeAttribute("aria-describedby"); }
    });
    const box = $(".form-error", form);
    if (box) { box.hidden = true; box.textContent = ""; }
  }

  let errorIds = 0;

  function markField(box, message) {
    const note = document.createElement("p");
    note.className = "field-error";
    note.id = "err-" + (++errorIds);
    note.textContent = message;
    box.appendChild(note);
    const controls = box.matches("input, select, textarea") ? [box] : $$("input, select, textarea", box).filter(visible);
    controls.forEach(function (control) {
      control.setAttribute("aria-invalid", "true");
      const described = control.getAttribute("aria-describedby");
      control.setAttribute("aria-describedby", (described ? described + " " : "") + note.id);
    });
    return controls[0] || null;
  }

  function formMessage(form, message) {
    const box = $(".form-error", form);
    if (box) {
      box.textContent = message;
      box.hidden = false;
    } else {
      toast(message, true);
    }
  }

  // Which field an action's refusal is about, from its stable code (and, for calendars and
  // steps, the part of the message that names it).
  const CODE_FIELDS = {
    name_taken: "name",
    shortcut_invalid: "shortcut",
    shortcut_taken: "shortcut",
    sla_target_required: "targets",
    warning_share_invalid: "warning_share",
    business_hours_not_found: "business_hours_id",
    sla_condition_invalid: "conditions",
    priority_invalid: "conditions.priorities",
    conditions_invalid: "conditions",
    actions_invalid: "actions",
    webhook_not_allowed: "actions",
    canned_response_not_found: "actions",
    idle_hours_required: "idle_hours",
    rule_event_invalid: "event",
    strategy_invalid: "strategy",
    capacity_invalid: "capacity",
    team_not_found: "actions",
    agent_not_found: "actions",
  };

  function fieldOf(error) {
    if (error.field) { return error.field; }
    const message = error.message || "";
    if (error.code === "business_hours_invalid") {
      const day = /\b(mon|tue|wed|thu|fri|sat|sun):/.exec(message);
      if (day) { return "periods." + day[1]; }
      if (/time zone/.test(message)) { return "timezone"; }
      if (/region/.test(message)) { return "holiday_subdivision"; }
      if (/holiday/.test(message)) { return "holiday_country"; }
      return "periods";
    }
    if (error.code === "actions_invalid") {
      const step = /:\s*(\d+)\./.exec(message);
      if (step) { return "actions." + step[1]; }
    }
    return CODE_FIELDS[error.code] || null;
  }

  function showError(form, error) {
    clearErrors(form);
    let first = null;
    const details = Array.isArray(error.details) ? error.details : [];
    let placed = false;
    details.forEach(function (detail) {
      const box = fieldBox(form, detail.field);
      if (box) {
        const control = markField(box, detail.problem || error.message);
        first = first || control;
        placed = true;
      }
    });
    if (!details.length) {
      const box = fieldBox(form, fieldOf(error));
      if (box) {
        first = markField(box, error.message);
        placed = true;
      }
    }
    if (!placed || details.length) { formMessage(form, error.message); }
    if (first) { first.focus(); }
  }

  // -- Small helpers ----------------------------------------------------------------------

  function field(form, name) { return form.elements.namedItem(name); }

  function value(form, name) {
    const el = field(form, name);
    return el ? String(el.value || "").trim() : "";
  }

  function setValue(form, name, text) {
    const el = field(form, name);
    if (el) { el.value = text === null || text === undefined ? "" : String(text); }
  }

  function checked(form, name) {
    const el = field(form, name);
    return Boolean(el && el.checked);
  }

  function setChecked(form, name, on) {
    const el = field(form, name);
    if (el) { el.checked = Boolean(on); }
  }

  function checkedValues(root, name) {
    return $$("input[name='" + name + "']", root).filter(function (el) { return el.checked; }).map(function (el) { return el.value; });
  }

  function commaList(text) {
    return String(text || "").split(",").map(function (part) { return part.trim(); }).filter(Boolean);
  }

  function localized(en, es) {
    const out = {};
    if (en) { out.en = en; }
    if (es) { out.es = es; }
    return Object.keys(out).length ? out : null;
  }

  function clone(id) { return document.getElementById(id).content.firstElementChild.cloneNode(true); }

  function byId(items, id) {
    return (items || []).filter(function (item) { return String(item.id) === String(id); })[0] || null;
  }

  function editor() { return document.getElementById("editor"); }

  function editorForm() { return $("form", editor()); }

  function openEditor(item) {
    const dialog = editor();
    const form = editorForm();
    clearErrors(form);
    form.reset();
    form.dataset.id = item && item.id !== undefined ? String(item.id) : "";
    const title = $("#editor-title", dialog);
    title.textContent = item && item.id !== undefined ? title.dataset.titleEdit : title.dataset.titleNew;
    const results = $("[data-dry-run-results]", dialog);
    if (results) { results.hidden = true; results.textContent = ""; }
    const fill = FILLERS[form.dataset.adminForm];
    if (fill) { fill(form, item || null); }
    const fields = $("[data-editable]", form);
    if (fields) { fields.disabled = !data.can_edit; }
    dialog.showModal();
    const first = $("input:not([type=hidden]):not([disabled]), select:not([disabled]), textarea:not([disabled])", form);
    if (first) { first.focus(); }
  }

  function number(text, fieldName, options) {
    const opts = options || {};
    if (text === "") { return null; }
    const parsed = Number(text);
    if (!isFinite(parsed)) { throw invalid(fieldName, t("Enter a number.")); }
    if (opts.whole && (Math.floor(parsed) !== parsed || parsed < 0)) { throw invalid(fieldName, t("Enter a whole number of 0 or more.")); }
    return parsed;
  }

  // -- Routing ----------------------------------------------------------------------------

  async function saveTeam(form) {
    const hours = value(form, "business_hours_id");
    const strategy = $("input[name=strategy]:checked", form);
    await api("PUT", "/api/v1/routing/teams/" + form.dataset.id, {
      strategy: strategy ? strategy.value : "round_robin",
      auto_assign: checked(form, "auto_assign"),
      reassign_when_offline: checked(form, "reassign_when_offline"),
      business_hours_id: hours ? Number(hours) : null,
    });
    const note = $(".card > .muted.small", form.closest(".card"));
    if (note) { note.remove(); }
    toast(t("Saved."));
  }

  async function saveAgent(form) {
    const row = form.closest("tr");
    const input = function (name) { return $("[name='" + name + "']", row); };
    const capacity = {};
    // The kinds of channel the page shows, and hidden ones it keeps as they are.
    $$("[name^='capacity.']", row).forEach(function (field) {
      const kind = field.name.slice("capacity.".length);
      const text = field.value.trim();
      const amount = number(text === "" ? "0" : text, "capacity." + kind, { whole: true });
      capacity[kind] = amount;
    });
    const skills = commaList(input("skills").value).map(function (s) { return s.toLowerCase(); });
    const saved = await api("PUT", "/api/v1/routing/agents/" + form.dataset.id, { skills: skills, capacity: capacity });
    input("skills").value = saved.skills.join(", ");
    toast(t("Saved."));
  }

  // -- Business hours ---------------------------------------------------------------------

  function addPeriod(day, start, end) {
    const row = clone("period-row");
    $("[name=start]", row).value = start || "";
    $("[name=end]", row).value = end || "";
    $("[data-periods]", day).appendChild(row);
    return row;
  }

  function addDate(form, text) {
    const row = clone("date-row");
    $("input", row).value = text || "";
    $("[data-dates]", form).appendChild(row);
    return row;
  }

  function fillSubdivisions(form, chosen) {
    const select = field(form, "holiday_subdivision");
    const country = value(form, "holiday_country");
    select.textContent = "";
    const whole = document.createElement("option");
    whole.value = "";
    whole.textContent = select.dataset.whole;
    select.appendChild(whole);
    ((data.subdivisions || {})[country] || []).forEach(function (code) {
      const option = document.createElement("option");
      option.value = code;
      option.textContent = code;
      select.appendChild(option);
    });
    select.value = chosen || "";
    select.disabled = !country;
  }

  function fillCalendar(form, item) {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "Europe/Madrid";
    setValue(form, "name", item ? item.name : "");
    setValue(form, "timezone", item ? item.timezone : zone);
    setChecked(form, "is_default", item ? item.is_default : false);
    DAYS.forEach(function (day) {
      const box = $("[data-day='" + day + "']", form);
      $("[data-periods]", box).textContent = "";
      const periods = item ? (item.periods[day] || []) : (day === "sat" || day === "sun" ? [] : [["", ""]]);
      periods.forEach(function (pair) { addPeriod(box, pair[0], pair[1]); });
    });
    setValue(form, "holiday_country", item ? item.holiday_country : "");
    fillSubdivisions(form, item ? item.holiday_subdivision : "");
    $("[data-dates]", form).textContent = "";
    (item ? item.closed_dates : []).forEach(function (day) { addDate(form, day); });
    const message = (item && item.out_of_office_message) || {};
    setValue(form, "ooo_en", message.en || "");
    setValue(form, "ooo_es", message.es || "");
  }

  function minutes(text) {
    const parts = text.split(":");
    return Number(parts[0]) * 60 + Number(parts[1]);
  }

  function clockText(text) {
    // "9:00" and "0900" are read as 09:00; anything else is left for the check to refuse.
    const raw = text.trim();
    const short = /^(\d):(\d\d)$/.exec(raw);
    if (short) { return "0" + short[1] + ":" + short[2]; }
    const bare = /^(\d\d)(\d\d)$/.exec(raw);
    return bare ? bare[1] + ":" + bare[2] : raw;
  }

  function collectCalendar(form) {
    const periods = {};
    let open = 0;
    DAYS.forEach(function (day) {
      const pairs = [];
      $$("[data-day='" + day + "'] [data-period]", form).forEach(function (row) {
        const startInput = $("[name=start]", row);
        const endInput = $("[name=end]", row);
        const start = clockText(startInput.value);
        const end = clockText(endInput.value);
        if (!start && !end) { return; }
        startInput.value = start;
        endInput.value = end;
        if (!CLOCK.test(start) || !CLOCK.test(end)) { throw invalid("periods." + day, t("Write times as HH:MM, for example 09:00 (24:00 is the end of the day).")); }
        if (minutes(end) <= minutes(start)) { throw invalid("periods." + day, t("A period must end after it starts.")); }
        pairs.push([start, end]);
      });
      pairs.sort(function (a, b) { return minutes(a[0]) - minutes(b[0]); });
      for (let i = 1; i < pairs.length; i++) {
        if (minutes(pairs[i][0]) < minutes(pairs[i - 1][1])) { throw invalid("periods." + day, t("Periods of the same day cannot overlap.")); }
      }
      open += pairs.length;
      periods[day] = pairs;
    });
    if (!value(form, "name")) { throw invalid("name", t("Fill this in.")); }
    if (!value(form, "timezone")) { throw invalid("timezone", t("Fill this in.")); }
    if (!open) { throw invalid("periods", t("Add at least one open period.")); }
    const dates = $$("[data-date] input", form).map(function (el) { return el.value; }).filter(Boolean);
    return {
      name: value(form, "name"),
      timezone: value(form, "timezone"),
      periods: periods,
      holiday_country: value(form, "holiday_country") || null,
      holiday_subdivision: value(form, "holiday_subdivision") || null,
      closed_dates: dates.filter(function (d, i) { return dates.indexOf(d) === i; }).sort(),
      out_of_office_message: localized(value(form, "ooo_en"), value(form, "ooo_es")),
      is_default: checked(form, "is_default"),
    };
  }

  // -- SLA policies -----------------------------------------------------------------------

  const TARGETS = ["first_response", "next_response", "resolution"];

  function addAttribute(form, key, raw) {
    const row = clone("attribute-row");
    let kind = "text";
    if (raw === true || raw === false) { kind = String(raw); } else if (typeof raw === "number") { kind = "number"; }
    $("[name=attr_key]", row).value = key || "";
    $("[name=attr_type]", row).value = kind;
    $("[name=attr_value]", row).value = raw === undefined || raw === null || kind === "true" || kind === "false" ? "" : String(raw);
    $("[data-attributes]", form).appendChild(row);
    syncAttribute(row);
    return row;
  }

  function syncAttribute(row) {
    const kind = $("[name=attr_type]", row).value;
    $("[data-attr-value]", row).hidden = kind === "true" || kind === "false";
  }

  function fillPolicy(form, item) {
    setValue(form, "name", item ? item.name : "");
    setValue(form, "position", item ? item.position : nextPosition(data.items));
    setChecked(form, "active", item ? item.active : true);
    TARGETS.forEach(function (kind) {
      const seconds = item ? item[kind + "_seconds"] : null;
      let unit = 3600;
      if (seconds && seconds % 86400 === 0) { unit = 86400; } else if (seconds && seconds % 3600 !== 0) { unit = 60; }
      setValue(form, kind, seconds ? String(Math.round((seconds / unit) * 100) / 100) : "");
      setValue(form, kind + "_unit", String(unit));
    });
    const calendar = item && item.business_hours_id;
    $$("input[name=basis]", form).forEach(function (el) { el.checked = el.value === (calendar ? "calendar" : "clock"); });
    if (calendar) { setValue(form, "business_hours_id", calendar); }
    syncBasis(form);
    setValue(form, "warning_share", item ? Math.round(item.warning_share * 100) : 80);
    const conditions = (item && item.conditions) || {};
    $$("input[name=priorities], input[name=channel_kinds], input[name=team_ids]", form).forEach(function (el) {
      const list = (conditions[el.name] || []).map(String);
      el.checked = list.indexOf(el.value) !== -1;
    });
    $("[data-attributes]", form).textContent = "";
    const attributes = conditions.contact_attributes || {};
    Object.keys(attributes).forEach(function (key) { addAttribute(form, key, attributes[key]); });
  }

  function syncBasis(form) {
    const basis = $("input[name=basis]:checked", form);
    field(form, "business_hours_id").disabled = !basis || basis.value !== "calendar";
  }

  function collectPolicy(form) {
    if (!value(form, "name")) { throw invalid("name", t("Fill this in.")); }
    const body = {
      name: value(form, "name"),
      position: number(value(form, "position") || "0", "position") || 0,
      active: checked(form, "active"),
    };
    TARGETS.forEach(function (kind) {
      const amount = number(value(form, kind), kind + "_seconds");
      body[kind + "_seconds"] = amount ? Math.round(amount * Number(value(form, kind + "_unit"))) : null;
    });
    const basis = $("input[name=basis]:checked", form);
    const hours = value(form, "business_hours_id");
    body.business_hours_id = basis && basis.value === "calendar" && hours ? Number(hours) : null;
    const share = number(value(form, "warning_share") || "80", "warning_share");
    body.warning_share = share / 100;
    const attributes = {};
    $$("[data-attribute]", form).forEach(function (row) {
      const key = $("[name=attr_key]", row).value.trim();
      const kind = $("[name=attr_type]", row).value;
      const text = $("[name=attr_value]", row).value.trim();
      if (!key && !text) { return; }
      if (!key) { throw invalid("conditions.contact_attributes", t("Give a name for the attribute.")); }
      if (kind === "true" || kind === "false") {
        attributes[key] = kind === "true";
      } else if (kind === "number") {
        attributes[key] = number(text, "conditions.contact_attributes");
      } else {
        attributes[key] = text;
      }
    });
    body.conditions = {
      priorities: checkedValues(form, "priorities"),
      channel_kinds: checkedValues(form, "channel_kinds"),
      team_ids: checkedValues(form, "team_ids").map(Number),
      contact_attributes: attributes,
    };
    return body;
  }

  function nextPosition(items) {
    const positions = (items || []).map(function (item) { return Number(item.position) || 0; });
    return positions.length ? Math.max.apply(null, positions) + 10 : 10;
  }

  // -- Conditions editor (rules) ----------------------------------------------------------

  function fieldKind(name) {
    if (name.indexOf("contact.attributes.") === 0) { return "any"; }
    const found = (data.fields || []).filter(function (f) { return f.name === name; })[0];
    return found ? found.kind : "text";
  }

  function suggestionList(name) {
    const options = (data.suggestions || {})[name];
    if (!options || !options.length) { return null; }
    const id = "suggest-" + name.replace(/\W/g, "-");
    if (!document.getElementById(id)) {
      const list = document.createElement("datalist");
      list.id = id;
      options.forEach(function (option) {
        const el = document.createElement("option");
        el.value = option.value;
        el.label = option.label;
        el.textContent = option.label;
        list.appendChild(el);
      });
      document.body.appendChild(list);
    }
    return id;
  }

  function syncCondition(row, keepOp) {
    const chosen = $("[name=field]", row).value;
    const kind = fieldKind(chosen);
    $("[data-attribute-key]", row).hidden = chosen !== "contact.attributes.";
    const op = $("[name=op]", row);
    const previous = keepOp || op.value;
    op.textContent = "";
    (data.operators[kind] || []).forEach(function (name) {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = data.labels.operators[name] || name;
      op.appendChild(option);
    });
    if (previous && (data.operators[kind] || []).indexOf(previous) !== -1) { op.value = previous; }
    const operator = op.value;
    const needsValue = operator !== "present" && operator !== "absent";
    $("[data-flag]", row).hidden = !(needsValue && kind === "flag");
    $("[data-value]", row).hidden = !needsValue || kind === "flag";
    $("[data-list-hint]", row).hidden = operator !== "in" && operator !== "not_in";
    const input = $("[name=value]", row);
    const list = suggestionList(chosen);
    if (list) { input.setAttribute("list", list); } else { input.removeAttribute("list"); }
    input.inputMode = kind === "number" && operator !== "in" && operator !== "not_in" ? "decimal" : "text";
  }

  function addCondition(form, group, condition) {
    const row = clone("condition-row");
    const list = $("[data-conditions='" + group + "']", form);
    list.appendChild(row);
    const c = condition || {};
    const name = c.field || "message.text";
    const select = $("[name=field]", row);
    if (name.indexOf("contact.attributes.") === 0) {
      select.value = "contact.attributes.";
      $("[name=attribute]", row).value = name.slice("contact.attributes.".length);
    } else {
      select.value = name;
    }
    syncCondition(row, c.op);
    const v = c.value;
    if (v === true || v === false) {
      $("[name=flag]", row).value = String(v);
    } else if (Array.isArray(v)) {
      $("[name=value]", row).value = v.join(", ");
    } else if (v !== null && v !== undefined) {
      $("[name=value]", row).value = String(v);
    }
    return row;
  }

  function conditionValue(kind, op, text, flag, where) {
    if (op === "present" || op === "absent") { return null; }
    if (kind === "flag") { return flag === "true"; }
    if (op === "in" || op === "not_in") {
      const items = commaList(text);
      return kind === "number" ? items.map(function (item) { return number(item, where); }) : items;
    }
    if (kind === "number" || ((kind === "any") && ["gt", "gte", "lt", "lte"].indexOf(op) !== -1)) {
      const parsed = number(text, where);
      if (parsed === null) { throw invalid(where, t("Enter a number.")); }
      return parsed;
    }
    if (text === "") { throw invalid(where, t("Fill this in.")); }
    return text;
  }

  function collectConditions(form) {
    const out = { all: [], any: [] };
    ["all", "any"].forEach(function (group) {
      $$("[data-conditions='" + group + "'] [data-condition-row]", form).forEach(function (row) {
        let name = $("[name=field]", row).value;
        if (name === "contact.attributes.") {
          const key = $("[name=attribute]", row).value.trim();
          if (!key) { throw invalid("conditions", t("Give a name for the attribute.")); }
          name += key;
        }
        const op = $("[name=op]", row).value;
        const kind = fieldKind(name);
        out[group].push({
          field: name,
          op: op,
          value: conditionValue(kind, op, $("[name=value]", row).value.trim(), $("[name=flag]", row).value, "conditions"),
        });
      });
    });
    return out;
  }

  // -- Actions editor (rules and macros) --------------------------------------------------

  const ACTION_KEYS = {
    assign_agent: ["agent_id"],
    assign_team: ["team_id"],
    unassign: [],
    set_priority: ["priority"],
    add_labels: ["labels"],
    remove_labels: ["labels"],
    reply: ["body", "canned_response_id"],
    add_note: ["body"],
    snooze: ["hours"],
    resolve: [],
    require_skills: ["skills"],
    webhook: ["url", "secret", "secret_set"],
  };

  // Whether the structured editor can show these actions without losing anything.
  function editable(actions) {
    return Array.isArray(actions) && actions.every(function (a) {
      const keys = ACTION_KEYS[a && a.type];
      const typeOption = $("#action-row").content.querySelector("option[value='" + (a && a.type) + "']");
      if (!keys || !typeOption) { return false; }
      return Object.keys(a).every(function (key) { return key === "type" || keys.indexOf(key) !== -1; }) &&
        (a.type !== "reply" || a.body === undefined || typeof a.body === "string" || typeof a.body === "object");
    });
  }

  function editableConditions(conditions) {
    if (!conditions || typeof conditions !== "object" || Array.isArray(conditions)) { return false; }
    return Object.keys(conditions).every(function (key) { return key === "all" || key === "any"; }) &&
      ["all", "any"].every(function (group) {
        const items = conditions[group] || [];
        return Array.isArray(items) && items.every(function (c) {
          return c && typeof c.field === "string" && (c.field.indexOf("contact.attributes.") === 0 ||
            (data.fields || []).some(function (f) { return f.name === c.field; })) &&
            (data.operators[fieldKind(c.field)] || []).indexOf(c.op) !== -1;
        });
      });
  }

  function syncAction(row) {
    const type = $("[name=type]", row).value;
    $$("[data-for]", row).forEach(function (el) {
      const on = el.dataset.for.split(" ").indexOf(type) !== -1;
      el.hidden = !on;
    });
    if (type === "reply") {
      const mode = $("[name=reply_mode]", row).value;
      $$("[data-reply]", row).forEach(function (el) { el.hidden = el.dataset.reply !== mode; });
    }
  }

  function numberRows(form) {
    $$("[data-action-row]", form).forEach(function (row, index) { row.dataset.field = "actions." + index; });
  }

  function addAction(form, action) {
    const row = clone("action-row");
    $("[data-actions]", form).appendChild(row);
    const a = action || { type: "add_labels" };
    $("[name=type]", row).value = a.type;
    if (a.agent_id !== undefined) { $("[name=agent_id]", row).value = String(a.agent_id); }
    if (a.team_id !== undefined) { $("[name=team_id]", row).value = String(a.team_id); }
    if (a.priority) { $("[name=priority]", row).value = a.priority; }
    if (a.labels) { $("[name=labels]", row).value = a.labels.join(", "); }
    if (a.skills) { $("[name=skills]", row).value = a.skills.join(", "); }
    if (a.hours !== undefined) { $("[name=hours]", row).value = String(a.hours); }
    if (a.url) { $("[name=url]", row).value = a.url; }
    // A saved secret is never shown: left empty, the rule keeps it.
    if (a.secret_set) { $("[name=secret]", row).placeholder = t("Set; leave empty to keep it"); row.dataset.secretSet = "1"; }
    if (a.type === "add_note") { $("[name=note]", row).value = a.body || ""; }
    if (a.type === "reply") {
      if (a.canned_response_id !== undefined) {
        $("[name=reply_mode]", row).value = "canned";
        $("[name=canned_response_id]", row).value = String(a.canned_response_id);
      } else if (typeof a.body === "string") {
        $("[name=body_en]", row).value = a.body;
      } else if (a.body) {
        $("[name=body_en]", row).value = a.body.en || "";
        $("[name=body_es]", row).value = a.body.es || "";
      }
    }
    syncAction(row);
    numberRows(form);
    return row;
  }

  function collectActions(form) {
    const rows = $$("[data-action-row]", form);
    if (!rows.length) { throw invalid("actions", t("Add at least one action.")); }
    return rows.map(function (row, index) {
      const where = "actions." + index;
      const get = function (name) { return $("[name=" + name + "]", row).value.trim(); };
      const type = get("type");
      const out = { type: type };
      if (type === "assign_agent") {
        if (!get("agent_id")) { throw invalid(where, t("Choose an agent.")); }
        out.agent_id = Number(get("agent_id"));
      } else if (type === "assign_team") {
        if (!get("team_id")) { throw invalid(where, t("Choose a team.")); }
        out.team_id = Number(get("team_id"));
      } else if (type === "set_priority") {
        out.priority = get("priority");
      } else if (type === "add_labels" || type === "remove_labels") {
        out.labels = commaList(get("labels"));
        if (!out.labels.length) { throw invalid(where, t("Fill this in.")); }
      } else if (type === "require_skills") {
        out.skills = commaList(get("skills")).map(function (s) { return s.toLowerCase(); });
        if (!out.skills.length) { throw invalid(where, t("Fill this in.")); }
      } else if (type === "snooze") {
        out.hours = number(get("hours"), where);
        if (!out.hours) { throw invalid(where, t("Enter a number.")); }
      } else if (type === "add_note") {
        out.body = $("[name=note]", row).value;
        if (!out.body.trim()) { throw invalid(where, t("Fill this in.")); }
      } else if (type === "webhook") {
        out.url = get("url");
        out.secret = get("secret");
        if (!out.secret && row.dataset.secretSet) { delete out.secret; }
        if (!out.url || (!out.secret && !row.dataset.secretSet)) { throw invalid(where, t("Fill this in.")); }
      } else if (type === "reply") {
        if (get("reply_mode") === "canned") {
          if (!get("canned_response_id")) { throw invalid(where, t("Choose a canned response.")); }
          out.canned_response_id = Number(get("canned_response_id"));
        } else {
          const en = $("[name=body_en]", row).value;
          const es = $("[name=body_es]", row).value;
          if (!en.trim() && !es.trim()) { throw invalid(where, t("Write the text in English, Spanish or both.")); }
          out.body = en.trim() && es.trim() ? { en: en, es: es } : (en.trim() ? en : es);
        }
      }
      return out;
    });
  }

  // -- JSON mode --------------------------------------------------------------------------

  function parseJson(text, where) {
    try {
      return JSON.parse(text);
    } catch (err) {
      const message = String(err.message || "");
      let line = 1;
      let column = 1;
      const position = /position (\d+)/.exec(message);
      const lineColumn = /line (\d+) column (\d+)/.exec(message);
      if (lineColumn) {
        line = Number(lineColumn[1]);
        column = Number(lineColumn[2]);
      } else if (position) {
        const before = text.slice(0, Number(position[1])).split("\n");
        line = before.length;
        column = before[before.length - 1].length + 1;
      }
      throw invalid(where, t("Not valid JSON (line {line}, column {column}): check quotes and commas.", { line: line, column: column }));
    }
  }

  function jsonMode(form) { return checked(form, "json_mode"); }

  function setJsonMode(form, on) {
    setChecked(form, "json_mode", on);
    $("[data-json]", form).hidden = !on;
    $("[data-structured]", form).hidden = on;
  }

  function jsonParts(form) {
    const conditions = parseJson(value(form, "conditions_json") || "{}", "conditions");
    if (!conditions || typeof conditions !== "object" || Array.isArray(conditions)) {
      throw invalid("conditions", t("The conditions are an object with \"all\" and \"any\" lists."));
    }
    const actions = parseJson(value(form, "actions_json") || "[]", "actions");
    if (!Array.isArray(actions)) { throw invalid("actions", t("The actions are a list of objects, each with a \"type\".")); }
    return { conditions: conditions, actions: actions };
  }

  function ruleParts(form) {
    return jsonMode(form) ? jsonParts(form) : { conditions: collectConditions(form), actions: collectActions(form) };
  }

  function fillStructured(form, conditions, actions) {
    $$("[data-conditions]", form).forEach(function (list) { list.textContent = ""; });
    $("[data-actions]", form).textContent = "";
    ["all", "any"].forEach(function (group) {
      ((conditions || {})[group] || []).forEach(function (c) { addCondition(form, group, c); });
    });
    (actions || []).forEach(function (a) { addAction(form, a); });
  }

  function toggleJson(form) {
    const wanted = jsonMode(form);
    clearErrors(form);
    try {
      if (wanted) {
        // Whatever the structured editor holds is carried over; half-filled rows as they are.
        let parts;
        try {
          parts = { conditions: collectConditions(form), actions: collectActions(form) };
        } catch (_err) {
          parts = { conditions: { all: [], any: [] }, actions: [] };
        }
        setValue(form, "conditions_json", JSON.stringify(parts.conditions, null, 2));
        setValue(form, "actions_json", JSON.stringify(parts.actions, null, 2));
        setJsonMode(form, true);
      } else {
        setJsonMode(form, true);
        const parts = jsonParts(form);
        if (!editableConditions(parts.conditions) || !editable(parts.actions)) {
          throw invalid("actions", t("This rule uses settings the editor cannot show; edit it as JSON."));
        }
        fillStructured(form, parts.conditions, parts.actions);
        setJsonMode(form, false);
      }
    } catch (error) {
      setJsonMode(form, true);
      showError(form, error);
    }
  }

  // -- Rules ------------------------------------------------------------------------------

  function syncEvent(form) {
    $("[data-idle]", form).hidden = value(form, "event") !== "conversation.idle";
  }

  function fillRule(form, item) {
    setValue(form, "name", item ? item.name : "");
    setValue(form, "event", item ? item.event : "message.received");
    setValue(form, "idle_hours", item && item.idle_hours ? item.idle_hours : "");
    setValue(form, "position", item ? item.position : nextPosition(data.items));
    setChecked(form, "active", item ? item.active : true);
    setChecked(form, "stop_processing", item ? item.stop_processing : false);
    syncEvent(form);
    const conditions = item ? item.conditions : { all: [], any: [] };
    const actions = item ? item.actions : [];
    setValue(form, "conditions_json", JSON.stringify(conditions, null, 2));
    setValue(form, "actions_json", JSON.stringify(actions, null, 2));
    if (editableConditions(conditions) && editable(actions)) {
      fillStructured(form, conditions, actions);
      if (!item) { addAction(form); }
      setJsonMode(form, false);
    } else {
      fillStructured(form, { all: [], any: [] }, []);
      setJsonMode(form, true);
    }
  }

  function ruleEvent(form) {
    const body = { event: value(form, "event") };
    if (body.event === "conversation.idle") {
      body.idle_hours = number(value(form, "idle_hours"), "idle_hours");
    }
    return body;
  }

  function collectRule(form) {
    if (!value(form, "name")) { throw invalid("name", t("Fill this in.")); }
    const parts = ruleParts(form);
    const body = ruleEvent(form);
    return {
      name: value(form, "name"),
      event: body.event,
      idle_hours: body.idle_hours || null,
      conditions: parts.conditions,
      actions: parts.actions,
      position: number(value(form, "position") || "0", "position") || 0,
      active: checked(form, "active"),
      stop_processing: checked(form, "stop_processing"),
    };
  }

  function ruleBody(item, changes) {
    return Object.assign({
      name: item.name,
      event: item.event,
      conditions: item.conditions,
      actions: item.actions,
      position: item.position,
      active: item.active,
      stop_processing: item.stop_processing,
      idle_hours: item.idle_hours,
    }, changes || {});
  }

  function actionText(step) {
    const label = data.labels.actions[step.type] || step.type;
    let detail = "";
    if (step.type === "assign_agent") {
      const agent = byId(data.agents, step.agent_id);
      detail = agent ? agent.name : "#" + step.agent_id;
    } else if (step.type === "assign_team") {
      const team = byId(data.teams, step.team_id);
      detail = team ? team.name : "#" + step.team_id;
    } else if (step.type === "set_priority") {
      detail = data.labels.priorities[step.priority] || step.priority;
    } else if (step.labels || step.skills) {
      detail = (step.labels || step.skills).join(", ");
    } else if (step.type === "snooze") {
      detail = String(step.hours);
    } else if (step.type === "webhook") {
      detail = step.url;
    }
    return detail ? label + ": " + detail : label;
  }

  function showDryRun(box, result) {
    box.textContent = "";
    box.hidden = false;
    const summary = document.createElement("p");
    summary.className = "dry-run-summary";
    const scanned = tn(
      "Scanned {n} conversation; {matched} would match.",
      "Scanned {n} conversations; {matched} would match.",
      result.scanned,
      { matched: result.matched.length }
    );
    summary.textContent = result.matched.length ? scanned : scanned + " " + t("No conversation matches now.");
    box.appendChild(summary);
    if (!result.matched.length) { return; }
    const list = document.createElement("ul");
    list.className = "dry-run-list";
    result.matched.forEach(function (match) {
      const item = document.createElement("li");
      item.dataset.conversation = String(match.conversation_id);
      const head = document.createElement("div");
      const link = document.createElement("a");
      link.href = "/inbox?view=all&c=" + match.conversation_id;
      link.textContent = t("Conversation #{id}", { id: match.conversation_id });
      head.appendChild(link);
      const status = document.createElement("span");
      status.className = "pill";
      status.textContent = data.labels.statuses[match.status] || match.status;
      head.appendChild(document.createTextNode(" "));
      head.appendChild(status);
      item.appendChild(head);
      const steps = document.createElement("ol");
      match.actions.forEach(function (step) {
        const li = document.createElement("li");
        li.textContent = actionText(step) + " — ";
        const verdict = document.createElement("span");
        verdict.className = step.would_change ? "would-change" : "muted";
        verdict.textContent = step.skipped ? t("skipped: the last message was sent automatically") : (step.would_change ? t("would change") : t("no change"));
        li.appendChild(verdict);
        if (step.text) {
          const quote = document.createElement("blockquote");
          quote.className = "ooo";
          quote.textContent = step.text;
          li.appendChild(quote);
        }
        steps.appendChild(li);
      });
      item.appendChild(steps);
      list.appendChild(item);
    });
    box.appendChild(list);
  }

  async function dryRunSaved(id) {
    const dialog = document.getElementById("dry-run-dialog");
    const item = byId(data.items, id);
    $("[data-dry-run-name]", dialog).textContent = item ? item.name : "";
    const box = $("[data-dry-run-results]", dialog);
    box.textContent = "…";
    dialog.showModal();
    try {
      showDryRun(box, await api("POST", "/api/v1/automation/rules/" + id + "/dry-run"));
    } catch (error) {
      box.textContent = error.message;
    }
  }

  async function dryRunEditor(form) {
    clearErrors(form);
    const box = $("[data-dry-run-results]", form);
    try {
      const parts = ruleParts(form);
      const body = Object.assign(ruleEvent(form), parts);
      if (!body.idle_hours) { delete body.idle_hours; }
      showDryRun(box, await api("POST", "/api/v1/automation/rules/dry-run", body));
      box.scrollIntoView({ block: "nearest" });
    } catch (error) {
      showError(form, error);
    }
  }

  // -- Macros and canned responses --------------------------------------------------------

  function fillMacro(form, item) {
    setValue(form, "name", item ? item.name : "");
    setChecked(form, "shared", item ? item.shared : true);
    $("[data-actions]", form).textContent = "";
    (item ? item.actions : [{ type: "reply" }]).forEach(function (a) { addAction(form, a); });
  }

  function collectMacro(form) {
    if (!value(form, "name")) { throw invalid("name", t("Fill this in.")); }
    return { name: value(form, "name"), shared: checked(form, "shared"), actions: collectActions(form) };
  }

  function fillCanned(form, item) {
    setValue(form, "shortcut", item ? item.shortcut : "");
    setValue(form, "title", item ? item.title : "");
    setValue(form, "body", item ? item.body : "");
    const translations = (item && item.translations) || {};
    setValue(form, "translation_en", translations.en || "");
    setValue(form, "translation_es", translations.es || "");
  }

  function collectCanned(form) {
    ["shortcut", "title", "body"].forEach(function (name) {
      if (!value(form, name)) { throw invalid(name, t("Fill this in.")); }
    });
    const translations = {};
    if (value(form, "translation_en")) { translations.en = field(form, "translation_en").value; }
    if (value(form, "translation_es")) { translations.es = field(form, "translation_es").value; }
    return {
      shortcut: value(form, "shortcut").replace(/^\//, "").toLowerCase(),
      title: value(form, "title"),
      body: field(form, "body").value,
      translations: translations,
    };
  }

  // -- Page wiring ------------------------------------------------------------------------

  const FILLERS = { calendar: fillCalendar, "sla-policy": fillPolicy, rule: fillRule, macro: fillMacro, canned: fillCanned };

  const RESOURCES = {
    "business-hours": { path: "/api/v1/business-hours", form: "calendar", collect: collectCalendar },
    "sla": { path: "/api/v1/sla-policies", form: "sla-policy", collect: collectPolicy },
    "rules": { path: "/api/v1/automation/rules", form: "rule", collect: collectRule, body: ruleBody },
    "macros": { path: "/api/v1/macros", form: "macro", collect: collectMacro },
    "canned-responses": { path: "/api/v1/canned-responses", form: "canned", collect: collectCanned },
  };
  const resource = RESOURCES[data.page];

  async function saveEditor(form) {
    const body = resource.collect(form);
    const id = form.dataset.id;
    await api(id ? "PUT" : "POST", resource.path + (id ? "/" + id : ""), body);
    editor().close();
    reloadWith(t("Saved."));
  }

  async function saveAutoResolve(form) {
    const hours = number(value(form, "auto_resolve_after_hours"), "auto_resolve_after_hours");
    await api("PUT", "/api/v1/automation/settings", {
      auto_resolve_after_hours: hours || null,
      auto_resolve_message: localized(value(form, "message_en"), value(form, "message_es")),
    });
    toast(t("Saved."));
  }

  const SUBMITS = {
    "team-routing": saveTeam,
    "agent-routing": saveAgent,
    "auto-resolve": saveAutoResolve,
    calendar: saveEditor,
    "sla-policy": saveEditor,
    rule: saveEditor,
    macro: saveEditor,
    canned: saveEditor,
  };

  // Policies and rules are ordered by position: moving one renumbers its list 10, 20, 30...
  async function move(button) {
    const item = byId(data.items, button.dataset.id);
    const peers = data.items.filter(function (other) { return data.page !== "rules" || other.event === item.event; });
    const order = peers.slice();
    const from = order.indexOf(item);
    const to = from + Number(button.dataset.step);
    if (to < 0 || to >= order.length) { return; }
    order.splice(from, 1);
    order.splice(to, 0, item);
    const body = resource.body || function (x, changes) {
      const copy = Object.assign({}, x, changes);
      delete copy.id;
      return copy;
    };
    for (let index = 0; index < order.length; index++) {
      const wanted = (index + 1) * 10;
      if (order[index].position !== wanted) {
        await api("PUT", resource.path + "/" + order[index].id, body(order[index], { position: wanted }));
      }
    }
    reloadWith(t("Saved."));
  }

  function insertVariable(button) {
    const form = button.closest("form");
    let target = form.lastText && form.contains(form.lastText) && visible(form.lastText) ? form.lastText : null;
    target = target || $$("textarea", form).filter(visible)[0];
    if (!target) { return; }
    const text = button.dataset.variable;
    const start = target.selectionStart === undefined ? target.value.length : target.selectionStart;
    const end = target.selectionEnd === undefined ? start : target.selectionEnd;
    target.value = target.value.slice(0, start) + text + target.value.slice(end);
    target.focus();
    target.selectionStart = target.selectionEnd = start + text.length;
  }

  const ACTIONS = {
    edit: function (el) { openEditor(el.dataset.id ? byId(data.items, el.dataset.id) : null); },
    close: function (el) { el.closest("dialog").close(); },
    delete: async function (el) {
      if (!window.confirm(t("Delete {name}? This cannot be undone.", { name: el.dataset.name }))) { return; }
      await api("DELETE", resource.path + "/" + el.dataset.id);
      reloadWith(t("Deleted."));
    },
    toggle: async function (el) {
      const item = byId(data.items, el.dataset.id);
      await api("PUT", resource.path + "/" + item.id, ruleBody(item, { active: !item.active }));
      reloadWith(t("Saved."));
    },
    move: move,
    "dry-run": function (el) { return dryRunSaved(el.dataset.id); },
    "dry-run-editor": function (el) { return dryRunEditor(el.closest("form")); },
    "add-period": function (el) {
      const row = addPeriod(el.closest("[data-day]"));
      $("input", row).focus();
    },
    "copy-monday": function (el) {
      const form = el.closest("form");
      const monday = $$("[data-day=mon] [data-period]", form).map(function (row) {
        return [$("[name=start]", row).value, $("[name=end]", row).value];
      });
      ["tue", "wed", "thu", "fri"].forEach(function (day) {
        const box = $("[data-day='" + day + "']", form);
        $("[data-periods]", box).textContent = "";
        monday.forEach(function (pair) { addPeriod(box, pair[0], pair[1]); });
      });
    },
    "add-date": function (el) { $("input", addDate(el.closest("form"))).focus(); },
    "add-attribute": function (el) { $("input", addAttribute(el.closest("form"))).focus(); },
    "add-condition": function (el) {
      const row = addCondition(el.closest("form"), el.dataset.group);
      $("select", row).focus();
    },
    "add-action": function (el) {
      const row = addAction(el.closest("form"), { type: "add_labels" });
      $("select", row).focus();
    },
    "remove-row": function (el) {
      const row = el.closest("[data-period], [data-date], [data-attribute], [data-condition-row], [data-action-row]");
      const form = el.closest("form");
      const list = row.parentElement;
      row.remove();
      numberRows(form);
      const next = $("button, input, select", list) || $("button", list.parentElement);
      if (next) { next.focus(); }
    },
    "row-up": function (el) {
      const row = el.closest("[data-action-row]");
      if (row.previousElementSibling) { row.parentElement.insertBefore(row, row.previousElementSibling); }
      numberRows(el.closest("form"));
      el.focus();
    },
    "row-down": function (el) {
      const row = el.closest("[data-action-row]");
      if (row.nextElementSibling) { row.parentElement.insertBefore(row.nextElementSibling, row); }
      numberRows(el.closest("form"));
      el.focus();
    },
    "insert-variable": insertVariable,
  };

  document.addEventListener("click", function (event) {
    const el = event.target.closest("[data-admin-action]");
    if (!el || el.matches("input[type=checkbox]")) { return; }
    const action = ACTIONS[el.dataset.adminAction];
    if (!action) { return; }
    event.preventDefault();
    Promise.resolve(action(el)).catch(function (error) { toast(error.message || t("Something went wrong; try again."), true); });
  });

  document.addEventListener("change", function (event) {
    const el = event.target;
    const form = el.form || el.closest("form");
    if (!form) { return; }
    if (el.dataset.adminAction === "json-mode") { toggleJson(form); }
    if (el.name === "holiday_country") { fillSubdivisions(form, ""); }
    if (el.name === "basis") { syncBasis(form); }
    if (el.name === "attr_type") { syncAttribute(el.closest("[data-attribute]")); }
    if (el.name === "event") { syncEvent(form); }
    if (el.name === "field" || el.name === "op") { syncCondition(el.closest("[data-condition-row]")); }
    if (el.name === "type" || el.name === "reply_mode") { syncAction(el.closest("[data-action-row]")); }
  });

  // Variables go into the text box last used.
  document.addEventListener("focusin", function (event) {
    if (event.target.matches && event.target.matches("textarea") && event.target.form) {
      event.target.form.lastText = event.target;
    }
  });

  document.addEventListener("submit", function (event) {
    const form = event.target;
    const submit = SUBMITS[form.dataset.adminForm];
    if (!submit) { return; }
    event.preventDefault();
    clearErrors(form);
    const buttons = $$("button[type=submit]", form);
    buttons.forEach(function (b) { b.disabled = true; });
    Promise.resolve()
      .then(function () { return submit(form); })
      .catch(function (error) { showError(form, error); })
      .finally(function () { buttons.forEach(function (b) { b.disabled = false; }); });
  });

  // -- Start ------------------------------------------------------------------------------

  // The agent rows of the routing table keep their inputs outside the row's form.
  $$("form[data-admin-form='agent-routing']").forEach(function (form) { form.closest("tr").dataset.errorScope = "row"; });
  let flash = null;
  try {
    flash = sessionStorage.getItem(FLASH);
    sessionStorage.removeItem(FLASH);
  } catch (_err) { /* private mode */ }
  if (flash) { toast(flash); }
  document.body.dataset.adminReady = "true";
})();
