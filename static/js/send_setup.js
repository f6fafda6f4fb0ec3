// The first message from an account: its sending settings inside the editor (templates/outgoing/_send_setup.html).
// Without this script the page works with plain posts; with it, the login fields show only when needed, the
// domain's published settings replace the guess, and Test answers in place (the text stays as it is anyway).
(function () {
  "use strict";
  const box = document.getElementById("send-setup");
  const form = document.getElementById("compose-form");
  if (!box || !form) return;
  const field = function (name) { return form.querySelector("[name='smtp-" + name + "']"); };

  // --- A separate login only when asked for ---
  const separate = document.getElementById("setup-separate");
  const logins = form.querySelectorAll("[name='smtp-auth']");
  function showLogin() {
    const chosen = form.querySelector("[name='smtp-auth']:checked");
    separate.hidden = !chosen || chosen.value !== "separate";
  }
  logins.forEach(function (radio) { radio.addEventListener("change", showLogin); });
  showLogin();

  // --- What the domain publishes (SRV, autoconfig) instead of the guess, unless the person changed it ---
  const source = document.getElementById("setup-source");
  const server = ["host", "port", "security"];
  let touched = false;
  server.forEach(function (name) { field(name).addEventListener("input", function () { touched = true; }); });
  async function lookup() {
    const url = box.dataset.suggestUrl;
    if (!url) return;
    const before = source.textContent;
    source.textContent = box.dataset.lookingText;
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      const answer = response.ok ? await response.json() : { suggestions: [] };
      const best = answer.suggestions[0];
      if (best && !touched) {
        field("host").value = best.host;
        field("port").value = String(best.port);
        field("security").value = best.security;
        source.textContent = box.dataset.foundText;
        return;
      }
    } catch (error) { /* offline: the guess stays */ }
    source.textContent = before;
  }
  lookup();

  // --- Test in place ---
  const button = document.getElementById("setup-test");
  const result = document.getElementById("setup-result");
  function show(ok, headline, detail) {
    const notice = document.createElement("div");
    notice.className = "notice " + (ok ? "ok" : "bad");
    notice.setAttribute("role", ok ? "status" : "alert");
    if (headline) {
      const strong = document.createElement("strong");
      strong.textContent = headline;
      notice.append(strong, " ");
    }
    const small = document.createElement(ok ? "small" : "span");
    if (ok) small.className = "help";
    small.textContent = detail;
    notice.append(small);
    result.replaceChildren(notice);
  }
  button.addEventListener("click", async function (event) {
    event.preventDefault();
    const data = new FormData(form);
    data.delete("attachments");  // files go up with Save or Send (or the page's own post below)
    data.delete("remove");
    data.set("action", "test");
    button.disabled = true;
    result.replaceChildren(document.createTextNode(box.dataset.testingText));
    try {
      const response = await fetch(form.getAttribute("action"), {
        method: "POST", body: data, credentials: "same-origin", headers: { "X-Requested-With": "fetch" },
      });
      const answer = await response.json();
      if (answer.url && new URL(form.getAttribute("action"), location.href).href !== new URL(answer.url, location.href).href) {
        form.setAttribute("action", answer.url);  // the draft was saved: later saves go to it
        history.replaceState(null, "", answer.url);
      }
      if (answer.invalid) {  // a field needs fixing: the page posts itself and shows where
        button.disabled = false;
        form.requestSubmit(button);
        return;
      }
      show(answer.ok, answer.headline, answer.detail);
    } catch (error) {
      show(false, "", box.dataset.unreachableText);
    }
    button.disabled = false;
  });
})();
