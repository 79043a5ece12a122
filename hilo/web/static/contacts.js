/* Hilo contacts directory: new contact, starting a conversation, CSV import with mapping and dry run.
 *
 * Pages are rendered by the server (hilo.web.directory_pages); this file sends the forms to the
 * REST API (hilo.api.directory) and shows its answers. Every text it shows comes from the page
 * (translated there) or from the API's error messages (translated by the server). */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("hilo-config").textContent);
  const $ = function (selector, root) { return (root || document).querySelector(selector); };
  const $$ = function (selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); };

  const api = window.hiloApi;  // app.js: CSRF, sign-in on 401, the API's error messages

  function showError(form, message) {
    const box = $(".form-error", form);
    box.textContent = message || "";
    box.hidden = !message;
  }

  // -- New contact ------------------------------------------------------------------------------

  async function newContact(form) {
    const identities = [];
    if (form.email.value.trim()) { identities.push({ kind: "email", value: form.email.value.trim() }); }
    if (form.phone.value.trim()) { identities.push({ kind: "phone", value: form.phone.value.trim() }); }
    try {
      const created = await api("POST", "/api/v1/contacts", { name: form.name.value.trim() || null, identities: identities });
      window.location.assign("/contacts/" + created.id);
    } catch (error) { showError(form, error.message); }
  }

  // -- Start a conversation (WhatsApp: templates outside the 24-hour window) ----------------------

  let templates = [];
  let templatesFor = null;

  function chosenOption() {
    const select = $("#start-channel");
    return select ? select.options[select.selectedIndex] : null;
  }

  function templatesOnly(option) {
    return Boolean(option) && option.dataset.templates === "yes" && option.dataset.code === "whatsapp_window_closed";
  }

  function placeholders(text) {
    const names = [];
    String(text || "").replace(/\{\{\s*([\w.]+)\s*\}\}/g, function (match, name) {
      if (names.indexOf(name) === -1) { names.push(name); }
      return match;
    });
    return names;
  }

  function templateBody(template) {
    const body = (template.components || []).find(function (c) { return String(c.type || "").toLowerCase() === "body"; });
    return body ? String(body.text || "") : "";
  }

  function templateLanguage(template) {
    const language = template.language;
    return language && typeof language === "object" ? language.code : language;
  }

  function chosenTemplate() {
    const picker = $("#start-template-picker");
    return picker && picker.value !== "" ? templates[Number(picker.value)] || null : null;
  }

  function filled(template) {
    let text = templateBody(template);
    $$("#start-template-vars input").forEach(function (input) {
      if (input.value.trim()) { text = text.split("{{" + input.dataset.name + "}}").join(input.value.trim()); }
    });
    return text;
  }

  function renderTemplate() {
    const template = chosenTemplate();
    const vars = $("#start-template-vars");
    const strings = $("#contacts-strings").dataset;
    vars.innerHTML = "";
    const preview = $("#start-template-preview");
    if (!template) { preview.hidden = true; return; }
    placeholders(templateBody(template)).forEach(function (name) {
      const field = document.createElement("label");
      field.className = "composer-field";
      const caption = document.createElement("span");
      caption.textContent = "{{" + name + "}}";
      const input = document.createElement("input");
      input.className = "input input-small";
      input.dataset.name = name;
      input.setAttribute("aria-label", strings.valueFor.split("{name}").join("{{" + name + "}}"));
      input.addEventListener("input", function () { preview.textContent = filled(template); });
      field.append(caption, input);
      vars.appendChild(field);
    });
    preview.textContent = filled(template);
    preview.hidden = false;
  }

  async function loadTemplates(channelId) {
    if (templatesFor === channelId) { return; }
    templatesFor = channelId;
    let items = [];
    try { items = (await api("GET", "/api/v1/channels/" + channelId + "/templates")).items || []; } catch (_error) { items = []; }
    templates = items;
    const picker = $("#start-template-picker");
    $$("option", picker).slice(1).forEach(function (el) { el.remove(); });
    items.forEach(function (template, index) {
      const el = document.createElement("option");
      el.value = String(index);
      el.textContent = template.name + " · " + templateLanguage(template);
      picker.appendChild(el);
    });
    $("#start-template-empty").hidden = items.length > 0;
    renderTemplate();
  }

  function channelChanged() {
    const option = chosenOption();
    if (!option) { return; }
    const hint = $("#start-hint");
    hint.textContent = option.dataset.reason || "";
    hint.hidden = !option.dataset.reason;
    $("#start-subject-field").hidden = option.dataset.kind !== "email";
    const useTemplate = templatesOnly(option);
    $("#start-template").hidden = !useTemplate;
    $("#start-body-field").hidden = useTemplate;
    if (useTemplate) { loadTemplates(option.value); }
  }

  async function startConversation(form) {
    const option = chosenOption();
    const body = { channel_account_id: Number(option.value) };
    const strings = $("#contacts-strings").dataset;
    if (templatesOnly(option)) {
      const template = chosenTemplate();
      if (!template) { showError(form, strings.chooseTemplate); return; }
      const inputs = $$("#start-template-vars input");
      if (inputs.some(function (input) { return !input.value.trim(); })) { showError(form, strings.fillVars); return; }
      const payload = { name: template.name, language: templateLanguage(template) };
      if (inputs.length) {
        payload.components = [{
          type: "body",
          parameters: inputs.map(function (input) {
            const parameter = { type: "text", text: input.value.trim() };
            if (!/^\d+$/.test(input.dataset.name)) { parameter.parameter_name = input.dataset.name; }
            return parameter;
          }),
        }];
      }
      body.template = payload;
      body.body = filled(template) || template.name;
    } else {
      body.body = form.body.value;
      if (option.dataset.kind === "email" && form.subject.value.trim()) { body.subject = form.subject.value.trim(); }
    }
    showError(form, null);
    try {
      const started = await api("POST", "/api/v1/contacts/" + form.dataset.contact + "/conversations", body);
      window.location.assign("/inbox?view=all&c=" + started.conversation_id);
    } catch (error) { showError(form, error.message); }
  }

  // -- CSV import -------------------------------------------------------------------------------

  const ATTRIBUTE = "attribute:";

  function mappingRows(columns, mapping) {
    const body = $("#mapping-table tbody");
    body.innerHTML = "";
    const choices = $("#mapping-targets");
    columns.forEach(function (column) {
      const row = document.createElement("tr");
      row.dataset.column = column;
      const name = document.createElement("td");
      name.textContent = column;
      const target = document.createElement("td");
      const select = document.createElement("select");
      select.className = "input";
      select.setAttribute("aria-label", column);
      select.appendChild(choices.content.cloneNode(true));
      const current = mapping[column] || "ignore";
      select.value = current.indexOf(ATTRIBUTE) === 0 ? ATTRIBUTE : current;
      target.appendChild(select);
      const keyCell = document.createElement("td");
      const key = document.createElement("input");
      key.className = "input";
      key.maxLength = 64;
      key.setAttribute("aria-label", column);
      key.value = current.indexOf(ATTRIBUTE) === 0 ? current.slice(ATTRIBUTE.length) : "";
      key.hidden = select.value !== ATTRIBUTE;
      select.addEventListener("change", function () {
        key.hidden = select.value !== ATTRIBUTE;
        if (!key.hidden && !key.value) { key.value = column.toLowerCase().replace(/[^a-z0-9_.-]+/g, "_").slice(0, 64); }
        $("#import-run").disabled = true;
      });
      key.addEventListener("input", function () { $("#import-run").disabled = true; });
      keyCell.appendChild(key);
      row.append(name, target, keyCell);
      body.appendChild(row);
    });
    $("#import-mapping").hidden = false;
  }

  function currentMapping() {
    const mapping = {};
    $$("#mapping-table tbody tr").forEach(function (row) {
      const select = $("select", row);
      mapping[row.dataset.column] = select.value === ATTRIBUTE ? ATTRIBUTE + $("input", row).value.trim() : select.value;
    });
    return mapping;
  }

  function showReport(report) {
    const title = $("#import-report-title");
    title.textContent = report.dry_run ? title.dataset.dry : title.dataset.done;
    $("#report-rows").textContent = String(report.rows);
    $("#report-created").textContent = String(report.created);
    $("#report-updated").textContent = String(report.updated);
    $("#report-rejected").textContent = String(report.rejected_count);
    const body = $("#rejected-table tbody");
    body.innerHTML = "";
    report.rejected.forEach(function (problem) {
      const row = document.createElement("tr");
      row.dataset.code = problem.code;
      [String(problem.line), problem.code, problem.column || "", problem.message].forEach(function (text) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.appendChild(cell);
      });
      body.appendChild(row);
    });
    $("#rejected-wrap").hidden = report.rejected.length === 0;
    $("#import-report").hidden = false;
  }

  async function runImport(form, dryRun, withMapping) {
    const file = form.file.files[0];
    if (!file) { return; }
    const data = new FormData();
    data.append("file", file);
    data.append("dry_run", dryRun ? "true" : "false");
    if (withMapping) { data.append("mapping", JSON.stringify(currentMapping())); }
    showError(form, null);
    $$("button", form).forEach(function (button) { button.disabled = true; });
    try {
      const report = await api("POST", "/api/v1/imports/contacts", data);
      if (!withMapping) { mappingRows(report.columns, report.mapping); }
      showReport(report);
      $("#import-check").disabled = false;
      $("#import-run").disabled = !dryRun;
    } catch (error) {
      showError(form, error.message);
      $("#import-check").disabled = false;
    }
  }

  // -- Wiring -----------------------------------------------------------------------------------

  document.addEventListener("submit", function (event) {
    const form = event.target;
    const kind = form.dataset.contactsForm;
    if (!kind) { return; }
    event.preventDefault();
    if (kind === "contact-new") { newContact(form); }
    if (kind === "start-conversation") { startConversation(form); }
    if (kind === "contact-import") {
      const dryRun = !event.submitter || event.submitter.dataset.dryRun === "yes";
      runImport(form, dryRun, !$("#import-mapping").hidden);
    }
  });

  const channel = $("#start-channel");
  if (channel) {
    channel.addEventListener("change", channelChanged);
    $("#start-template-picker").addEventListener("change", renderTemplate);
    channelChanged();
  }
  const file = $("#import-file");
  if (file) {
    file.addEventListener("change", function () {
      $("#import-mapping").hidden = true;
      $("#import-report").hidden = true;
      if (file.files.length) { runImport($("#contact-import"), true, false); }
    });
  }
})();
