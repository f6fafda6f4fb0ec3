// Compose: address suggestions from the user's own mail, and drafts saved automatically.
(function () {
  "use strict";
  const form = document.getElementById("compose-form");
  if (!form) return;
  const status = document.getElementById("autosave-status");
  const list = document.getElementById("address-suggestions");

  // --- Drafts saved while typing (without the file input: files go up with Save or Send) ---
  let dirty = false;
  let saving = false;
  form.addEventListener("input", function (event) {
    if (event.target.type !== "file") dirty = true;
  });
  async function autosave() {
    if (!dirty || saving) return;
    saving = true;
    dirty = false;
    const data = new FormData(form);
    data.delete("attachments");
    data.delete("remove");
    data.set("action", "autosave");
    try {
      const response = await fetch(form.action, {
        method: "POST", body: data, credentials: "same-origin", headers: { "X-Requested-With": "fetch" },
      });
      const answer = await response.json();
      if (response.ok) {
        if (form.action !== new URL(answer.url, location.href).href) {
          form.action = answer.url;
          history.replaceState(null, "", answer.url);
        }
        status.textContent = form.dataset.savedText;
      } else {
        dirty = true;
        status.textContent = form.dataset.unsavedText;
      }
    } catch (error) {
      dirty = true;
      status.textContent = form.dataset.unsavedText;
    } finally {
      saving = false;
    }
  }
  setInterval(autosave, 5000);
  form.addEventListener("submit", function () { dirty = false; });

  // --- Another sender: swap the signature if the old one is still in the text ---
  const signatures = JSON.parse(document.getElementById("compose-signatures").textContent);
  const account = form.querySelector("[name=account]");
  const body = form.querySelector("[name=body]");
  let previous = account ? account.value : null;
  if (account && body) account.addEventListener("change", function () {
    const before = (signatures[previous] || "").trim();
    const after = (signatures[account.value] || "").trim();
    if (before && body.value.includes(before)) body.value = body.value.replace(before, after);
    else if (!before && after && !body.value.trim()) body.value = "\n\n" + after + "\n";
    previous = account.value;
    dirty = true;
  });

  // --- Address suggestions ---
  let active = null;
  let timer = null;
  let controller = null;
  function currentToken(input) {
    const parts = input.value.split(",");
    return parts[parts.length - 1].trim();
  }
  function choose(input, item) {
    const parts = input.value.split(",");
    let name = item.name.replace(/["\\]/g, "");
    if (/[,;:<>()[\]@.]/.test(name)) name = "\"" + name + "\"";  // RFC 5322 specials need quotes
    parts[parts.length - 1] = " " + (name ? name + " <" + item.address + ">" : item.address);
    input.value = parts.join(",").replace(/^\s+/, "") + ", ";
    hide();
    input.focus();
    dirty = true;
  }
  function hide() {
    list.hidden = true;
    list.replaceChildren();
    active = null;
  }
  function show(input, results) {
    list.replaceChildren();
    results.forEach(function (item, index) {
      const option = document.createElement("li");
      option.setAttribute("role", "option");
      option.id = "suggestion-" + index;
      option.textContent = item.name ? item.name + " <" + item.address + ">" : item.address;
      option.addEventListener("mousedown", function (event) { event.preventDefault(); choose(input, item); });
      option.dataset.index = index;
      list.appendChild(option);
    });
    list.hidden = results.length === 0;
    list.results = results;
    active = input;
    const box = input.getBoundingClientRect();
    list.style.setProperty("--left", (box.left + window.scrollX) + "px");
    list.style.setProperty("--top", (box.bottom + window.scrollY) + "px");
    list.style.setProperty("--width", box.width + "px");
  }
  async function lookup(input) {
    const token = currentToken(input);
    if (token.length < 2) { hide(); return; }
    if (controller) controller.abort();
    controller = new AbortController();
    try {
      const response = await fetch(form.dataset.addressesUrl + "?q=" + encodeURIComponent(token),
                                   { credentials: "same-origin", signal: controller.signal });
      if (!response.ok) return;
      const answer = await response.json();
      show(input, answer.results);
    } catch (error) { /* aborted or offline: no suggestions */ }
  }
  form.querySelectorAll("[data-address-field]").forEach(function (input) {
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", "address-suggestions");
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { lookup(input); }, 150);
    });
    input.addEventListener("blur", function () { setTimeout(hide, 100); });
    input.addEventListener("keydown", function (event) {
      if (list.hidden || active !== input) return;
      const options = Array.from(list.children);
      let current = options.findIndex(function (o) { return o.getAttribute("aria-selected") === "true"; });
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        current = event.key === "ArrowDown" ? Math.min(current + 1, options.length - 1) : Math.max(current - 1, 0);
        options.forEach(function (o, i) { o.setAttribute("aria-selected", i === current ? "true" : "false"); });
        input.setAttribute("aria-activedescendant", options[current].id);
      } else if ((event.key === "Enter" || event.key === "Tab") && current >= 0) {
        event.preventDefault();
        choose(input, list.results[current]);
      } else if (event.key === "Escape") {
        hide();
      }
    });
  });
})();
