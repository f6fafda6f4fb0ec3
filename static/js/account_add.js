// Add-account form: when the e-mail address is entered, ask the server for the
// provider's settings and fill in the fields the person has not typed yet.
(function () {
  "use strict";
  const form = document.getElementById("account-form");
  if (!form) return;
  const address = form.querySelector("[name=address]");
  const notes = document.getElementById("provider-notes");
  const field = (name) => form.querySelector("[name=" + name + "]");
  const touched = new Set();
  ["host", "port", "security", "username"].forEach(function (name) {
    const input = field(name);
    if (input) input.addEventListener("input", function () { touched.add(name); });
  });
  function fill(name, value) {
    const input = field(name);
    if (input && !touched.has(name) && (!input.value || input.dataset.filled === "1")) {
      input.value = value;
      input.dataset.filled = "1";
    }
  }
  let last = "";
  async function lookup() {
    const value = address.value.trim();
    if (!value.includes("@") || value === last) return;
    last = value;
    let data;
    try {
      const response = await fetch(form.dataset.suggestUrl + "?address=" + encodeURIComponent(value),
                                   { credentials: "same-origin" });
      if (!response.ok) return;
      data = await response.json();
    } catch (e) { return; }
    const best = data.suggestions[0];
    if (!best) return;
    fill("host", best.host);
    fill("port", String(best.port));
    fill("security", best.security);
    fill("username", best.username);
    const text = [best.name, best.notes].filter(Boolean).join(": ");
    notes.textContent = best.source === "guess" ? notes.dataset.guessText + " " + best.notes : text;
    notes.hidden = !notes.textContent;
  }
  address.addEventListener("change", lookup);
  address.addEventListener("blur", lookup);
})();
