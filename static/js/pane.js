// The reading pane (Preferences): on a wide screen a row opens its message beside the list.
// The message page is fetched from its own URL and its main content shown here; it keeps working on its own.
(function () {
  "use strict";
  const pane = document.getElementById("reading-pane");
  if (!pane) return;
  const wide = matchMedia("(min-width: 60rem)");
  const content = pane.querySelector(".pane-body");
  const bar = pane.querySelector(".pane-bar");
  const openLink = pane.querySelector(".pane-open");
  const empty = content.cloneNode(true); // the pane's own empty state, as the server rendered it
  let loading = null;

  function mark(link) {
    document.querySelectorAll("#message-list > li.open").forEach((li) => li.classList.remove("open"));
    const li = link && link.closest("li");
    if (!li) return;
    li.classList.add("open");
    // Opening it marks it read, as the message page does: the inbox's count goes down with it.
    const badge = document.getElementById("unread-badge");
    const mail = document.getElementById("mail");
    if (li.classList.contains("unread") && badge && mail.dataset.folder === "inbox" && /^\d+$/.test(badge.textContent)) {
      const left = Number(badge.textContent) - 1;
      badge.textContent = left ? String(left) : "";
      badge.hidden = !left;
    }
    li.classList.remove("unread");
  }

  async function show(link) {
    if (loading) loading.abort();
    const controller = new AbortController();
    loading = controller;
    pane.setAttribute("aria-busy", "true");
    mark(link);
    try {
      const response = await fetch(link.href, { credentials: "same-origin", signal: controller.signal });
      if (!response.ok) throw new Error("HTTP " + response.status);
      // Our own page, parsed inert (no script runs); its nodes move into the pane.
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const main = page.getElementById("main");
      if (!main) throw new Error("no content");
      const nodes = Array.from(main.childNodes); // a copy: adopting a node takes it out of main.childNodes
      content.replaceChildren(...nodes.map((node) => document.adoptNode(node)));
      openLink.href = link.href;
      bar.hidden = false;
      pane.scrollTop = 0;
      document.dispatchEvent(new CustomEvent("webpop:pane-loaded", { detail: { pane: pane, url: link.href } }));
    } catch (error) {
      if (error.name === "AbortError") return;
      const p = document.createElement("p");
      p.className = "error";
      p.setAttribute("role", "alert");
      p.textContent = pane.dataset.error;
      content.replaceChildren(p);
    } finally {
      if (loading === controller) {
        loading = null;
        pane.removeAttribute("aria-busy");
      }
    }
  }

  document.addEventListener("click", function (event) {
    const link = event.target.closest("#message-list > li > a");
    if (!link || !wide.matches) return;
    if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    show(link);
  });

  pane.querySelector(".pane-close").addEventListener("click", function () {
    if (loading) loading.abort();
    content.replaceChildren(...empty.cloneNode(true).childNodes);
    bar.hidden = true;
    mark(null);
  });
})();
