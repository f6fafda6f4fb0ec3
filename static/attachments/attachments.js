// Attachments under a message: a thumbnail that could not be made shows its icon instead, and image
// attachments open in a lightbox (previous / next with buttons, arrow keys or a swipe; Escape closes).
// Without this script every link still works: it opens the attachment's preview page.
// Loaded as a module: however many messages a page shows, it runs once.
const SVG = "http://www.w3.org/2000/svg";

function markFailed(img) {
  img.classList.add("failed");
  const link = img.closest("a[data-lightbox]");
  if (link) link.dataset.failed = "1";
}

for (const img of document.querySelectorAll(".attachment-thumb")) {
  if (img.complete && img.naturalWidth === 0) markFailed(img);
  else img.addEventListener("error", () => markFailed(img));
}

let box = null; // the lightbox's parts, made on first use
let items = [];
let index = 0;

function icon(href, name) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("aria-hidden", "true");
  const use = document.createElementNS(SVG, "use");
  use.setAttribute("href", href + "#" + name);
  svg.append(use);
  return svg;
}

function control(tag, className, label, iconHref, iconName, showLabel) {
  const element = document.createElement(tag);
  element.className = className;
  if (tag === "button") element.type = "button";
  element.append(icon(iconHref, iconName));
  const text = document.createElement("span");
  text.textContent = label;
  text.className = showLabel ? "lightbox-label" : "visually-hidden";
  element.append(text);
  if (!showLabel) element.title = label;
  return element;
}

function build(texts) {
  const dialog = document.createElement("dialog");
  dialog.className = "lightbox";
  dialog.setAttribute("aria-labelledby", "lightbox-title");
  const bar = document.createElement("div");
  bar.className = "lightbox-bar";
  const title = document.createElement("h2");
  title.className = "lightbox-title";
  title.id = "lightbox-title";
  title.dir = "auto";
  const count = document.createElement("span");
  count.className = "lightbox-count";
  const download = control("a", "lightbox-download", texts.download, texts.icons, "download", true);
  download.setAttribute("download", "");
  const details = control("a", "lightbox-details", texts.details, texts.icons, "eye", false);
  const close = control("button", "lightbox-close", texts.close, texts.icons, "x", false);
  bar.append(title, count, download, details, close);
  const stage = document.createElement("div");
  stage.className = "lightbox-stage";
  const previous = control("button", "lightbox-prev", texts.previous, texts.icons, "chevron-left", false);
  const next = control("button", "lightbox-next", texts.next, texts.icons, "chevron-right", false);
  const img = document.createElement("img");
  const error = document.createElement("p");
  error.className = "lightbox-error";
  error.hidden = true;
  error.textContent = texts.unavailable;
  stage.append(previous, img, error, next);
  dialog.append(bar, stage);
  document.body.append(dialog);

  close.addEventListener("click", () => dialog.close());
  previous.addEventListener("click", () => show(index - 1));
  next.addEventListener("click", () => show(index + 1));
  img.addEventListener("error", () => { img.hidden = true; error.hidden = false; });
  img.addEventListener("load", () => { dialog.dataset.loaded = img.src; });
  dialog.addEventListener("keydown", (event) => {
    if (event.key === "ArrowLeft") { event.preventDefault(); show(index - 1); }
    else if (event.key === "ArrowRight") { event.preventDefault(); show(index + 1); }
  });
  // A horizontal swipe on a touch screen moves to the neighbouring image.
  let startX = null;
  stage.addEventListener("pointerdown", (event) => { startX = event.isPrimary ? event.clientX : null; });
  stage.addEventListener("pointerup", (event) => {
    if (startX === null || event.pointerType === "mouse") return;
    const moved = event.clientX - startX;
    startX = null;
    if (Math.abs(moved) > 60) show(index + (moved < 0 ? 1 : -1));
  });
  return { dialog, title, count, download, details, previous, next, img, error, texts };
}

function show(position) {
  index = (position + items.length) % items.length;
  const link = items[index];
  const { dialog, title, count, download, details, previous, next, img, error, texts } = box;
  delete dialog.dataset.loaded;
  error.hidden = true;
  img.hidden = false;
  img.alt = link.dataset.name;
  img.src = link.dataset.lightbox;
  title.textContent = link.dataset.name;
  count.textContent = texts.position.replace("%(index)s", index + 1).replace("%(count)s", items.length);
  count.hidden = items.length < 2;
  previous.hidden = next.hidden = items.length < 2;
  download.href = link.dataset.downloadUrl;
  details.href = link.href;
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-lightbox]");
  if (!link || link.dataset.failed || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
  const section = link.closest("[data-attachments]");
  items = Array.from(section.querySelectorAll("a[data-lightbox]")).filter((a) => !a.dataset.failed);
  event.preventDefault();
  if (!box) box = build({ ...section.dataset });
  box.dialog.showModal();
  show(items.indexOf(link));
});
