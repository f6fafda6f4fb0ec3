// Light/dark theme: follows the system unless the person chose one (kept in localStorage).
// Loaded in <head> so the page never flashes in the wrong theme.
(function () {
  "use strict";
  const root = document.documentElement;
  let saved = null;
  try { saved = localStorage.getItem("webpop-theme"); } catch (e) { /* storage disabled */ }
  if (saved === "light" || saved === "dark") root.dataset.theme = saved;
  document.addEventListener("DOMContentLoaded", function () {
    const button = document.getElementById("theme-toggle");
    if (!button) return;
    button.addEventListener("click", function () {
      const dark = root.dataset.theme ? root.dataset.theme === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
      root.dataset.theme = dark ? "light" : "dark";
      try { localStorage.setItem("webpop-theme", root.dataset.theme); } catch (e) { /* storage disabled */ }
    });
  });
})();
