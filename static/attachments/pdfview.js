// The PDF preview: pdf.js (static/vendor/pdfjs, loaded only here) draws each page into a canvas.
// Nothing in the PDF runs: pdf.js executes PDF JavaScript only through its scripting sandbox, which is
// not shipped, and no annotation layer is drawn, so links and form actions in the file do nothing here.
// The page's Content-Security-Policy allows no eval and no WebAssembly either.
const root = document.getElementById("pdf-viewer");
const MAX_PAGES = 300;

function status(text, state) {
  let line = root.querySelector(".pdf-status");
  if (!line) {
    line = document.createElement("p");
    line.className = "pdf-status";
    line.setAttribute("role", "status");
    root.prepend(line);
  }
  line.textContent = text;
  if (state) {
    root.dataset.state = state;
    root.removeAttribute("aria-busy");
  }
}

async function renderPage(page, canvas) {
  const base = page.getViewport({ scale: 1 });
  const width = Math.min(root.clientWidth - 24, 1100);
  const ratio = window.devicePixelRatio || 1;
  const viewport = page.getViewport({ scale: (width / base.width) * ratio });
  canvas.width = Math.floor(viewport.width);
  canvas.height = Math.floor(viewport.height);
  canvas.style.width = Math.floor(viewport.width / ratio) + "px";
  await page.render({ canvas, canvasContext: canvas.getContext("2d"), viewport }).promise;
  canvas.dataset.rendered = "1";
}

async function main() {
  let pdfjs;
  try {
    pdfjs = await import(root.dataset.pdfjs);
  } catch (error) {
    status(root.dataset.failed, "error");
    return;
  }
  pdfjs.GlobalWorkerOptions.workerSrc = root.dataset.worker;
  const task = pdfjs.getDocument({
    url: root.dataset.src,
    disableRange: true,
    disableStream: true,
    disableAutoFetch: true,
    enableXfa: false,
    useWasm: false,
    useSystemFonts: true,
    stopAtErrors: false,
    verbosity: 0,
  });
  task.onPassword = () => { status(root.dataset.locked, "locked"); task.destroy(); };
  let pdf;
  try {
    pdf = await task.promise;
  } catch (error) {
    if (root.dataset.state === "loading") status(root.dataset.failed, "error");
    return;
  }
  const count = Math.min(pdf.numPages, MAX_PAGES);
  const label = root.dataset.pageLabel.replace("%(count)s", pdf.numPages);
  root.querySelector(".pdf-status").remove();
  const canvases = [];
  for (let number = 1; number <= count; number++) {
    const canvas = document.createElement("canvas");
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", label.replace("%(page)s", number));
    canvas.dataset.page = number;
    root.append(canvas);
    canvases.push(canvas);
  }
  if (pdf.numPages > count) {
    const more = document.createElement("p");
    more.className = "notice";
    more.textContent = root.dataset.more.replace("%(count)s", count);
    root.append(more);
  }
  // Until drawn, every page holds the first page's place (most documents have one page size).
  const first = (await pdf.getPage(1)).getViewport({ scale: 1 });
  const width = Math.min(root.clientWidth - 24, 1100);
  for (const canvas of canvases) {
    canvas.width = Math.round(first.width / 4);
    canvas.height = Math.round(first.height / 4);
    canvas.style.width = Math.floor(width) + "px";
  }
  // Pages are drawn as they come into view; the first one at once.
  const draw = async (canvas) => {
    if (canvas.dataset.drawing) return;
    canvas.dataset.drawing = "1";
    try {
      await renderPage(await pdf.getPage(Number(canvas.dataset.page)), canvas);
    } catch (error) {
      canvas.dataset.rendered = "failed";
    }
  };
  await draw(canvases[0]);
  root.dataset.state = canvases[0].dataset.rendered === "1" ? "rendered" : "error";
  root.removeAttribute("aria-busy");
  if (root.dataset.state === "error") { status(root.dataset.failed); return; }
  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries) if (entry.isIntersecting) { observer.unobserve(entry.target); draw(entry.target); }
  }, { rootMargin: "600px 0px" });
  canvases.slice(1).forEach((canvas) => observer.observe(canvas));
}

main().catch(() => status(root.dataset.failed, "error"));
