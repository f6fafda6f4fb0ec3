// Sending settings: picking a provider fills in its SMTP server, port and security.
(function () {
  "use strict";
  const form = document.getElementById("smtp-settings-form");
  const data = document.getElementById("smtp-presets");
  if (!form || !data) return;
  const presets = JSON.parse(data.textContent);
  const preset = form.querySelector("[name=preset]");
  if (!preset) return;
  preset.addEventListener("change", function () {
    const chosen = presets[preset.value];
    if (!chosen) return;
    form.querySelector("[name=host]").value = chosen.host;
    form.querySelector("[name=port]").value = chosen.port;
    form.querySelector("[name=security]").value = chosen.security;
  });
})();
