// Compose: address suggestions from the user's own mail, drafts saved automatically, pictures in rich text.
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
  form.addEventListener("trix-change", function () { dirty = true; });  // the rich text editor (richtext.js)
  let running = null;
  function autosave() {
    if (!dirty || saving) return running;
    running = save();
    return running;
  }
  async function save() {
    saving = true;
    dirty = false;
    const data = new FormData(form);
    data.delete("attachments");
    data.delete("remove");
    // The first message's sending setup (send_setup.js) is not part of the draft: its password stays here.
    Array.from(data.keys()).forEach(function (key) { if (key.startsWith("smtp-")) data.delete(key); });
    data.set("action", "autosave");
    try {
      // getAttribute: form.action would be the buttons named "action"
      const response = await fetch(form.getAttribute("action"), {
        method: "POST", body: data, credentials: "same-origin", headers: { "X-Requested-With": "fetch" },
      });
      const answer = await response.json();
      if (response.ok) {
        if (new URL(form.getAttribute("action"), location.href).href !== new URL(answer.url, location.href).href) {
          form.setAttribute("action", answer.url);
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

  // --- Pictures in rich text: stored with the draft (saved first if it is new), shown from there ---
  async function draftUrl() {
    const saved = /\/\d+\/$/;
    if (!saved.test(form.getAttribute("action"))) {
      if (running) await running;
      if (!saved.test(form.getAttribute("action"))) {
        dirty = true;
        await autosave();
      }
    }
    return saved.test(form.getAttribute("action")) ? form.getAttribute("action") : null;
  }
  form.addEventListener("trix-attachment-add", async function (event) {
    const attachment = event.attachment;
    if (!attachment.file) return;
    const url = await draftUrl();
    const data = new FormData();
    data.set("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    data.set("file", attachment.file);
    try {
      if (!url) throw new Error("not saved");
      const response = await fetch(url + "images/", {
        method: "POST", body: data, credentials: "same-origin", headers: { "X-Requested-With": "fetch" },
      });
      const answer = await response.json();
      if (!response.ok) throw new Error(answer.error || String(response.status));
      attachment.setAttributes({ url: answer.url });
      dirty = true;
    } catch (error) {
      attachment.remove();
      status.textContent = error.message === "not saved" ? form.dataset.unsavedText : error.message;
    }
  });

  // --- Another sender: swap the signature if the old one is still in the text ---
  const signatures = JSON.parse(document.getElementById("compose-signatures").textContent);
  const richSignatures = JSON.parse(document.getElementById("compose-signatures-html").textContent);
  const sender = form.querySelector("select[name=identity]");
  const body = form.querySelector("[name=body]");
  const format = form.querySelector("[name=format]");
  let previous = sender ? sender.value : null;
  // In the editor, positions count characters of the document's text (each block ends with "\n").
  function swapRich(editor, before, after) {
    const text = editor.getDocument().toString();
    const old = before ? Trix.HTMLParser.parse(before).getDocument().toString().replace(/\n$/, "") : "";
    const at = old ? text.indexOf(old) : -1;
    if (at >= 0) {
      editor.setSelectedRange([at, at + old.length]);
      if (after) editor.insertHTML(after);
      else editor.deleteInDirection("forward");
    } else if (!old && after && !text.trim()) {
      editor.loadHTML("<div><br></div>" + after);
    }
  }
  if (sender && body) sender.addEventListener("change", function () {
    const editor = form.querySelector("trix-editor");
    if (format && format.value === "rich" && editor && editor.editor) {
      swapRich(editor.editor, richSignatures[previous] || "", richSignatures[sender.value] || "");
      previous = sender.value;
      dirty = true;
      return;
    }
    const before = (signatures[previous] || "").trim();
    const after = (signatures[sender.value] || "").trim();
    if (before && body.value.includes(before)) body.value = body.value.replace(before, after);
    else if (!before && after && !body.value.trim()) body.value = "\n\n" + after + "\n";
    previous = sender.value;
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
