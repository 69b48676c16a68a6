// Pan and zoom for the server-drawn map of /map (templates/map.html).
//
// The page works without this: the SVG, the counts and the list come from
// the server. Here the same picture is redrawn for a new view: the land from
// /map/land.json, the incidents from /map/points.json (the page's filter,
// inside the view; crowded cells come back as numbered clusters). Dragging
// or the arrow keys pan; the wheel, the +/- buttons or keys zoom. Every
// request goes to this origin; nothing is inline (the CSP forbids it).

const SVG = "http://www.w3.org/2000/svg";
const INK = "#1b1b1b";
const FILL = {
  "actual-attack": "#b3261e",
  "attempted-attack": "#b35c00",
  "suspicious-approach": "#1f5fa8",
  other: "#4d4d4d",
};
const SINGULAR = {
  "actual-attack": "actual attack",
  "attempted-attack": "attempted attack",
  "suspicious-approach": "suspicious approach",
  other: "other or not stated",
};
const MIN_SPAN = 0.05;

function element(name, attributes, text) {
  const made = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) made.setAttribute(key, String(value));
  if (text !== undefined) made.textContent = text;
  return made;
}

// the same shapes as mapsvg.marker(): the kind by shape, the verification by line
export function markerShape(kind, confirmed, x, y, r) {
  const colour = FILL[kind] || FILL.other;
  const line = confirmed
    ? { stroke: INK, "stroke-width": (r / 3.5).toFixed(2) }
    : {
        stroke: colour,
        "stroke-width": (r / 3.5).toFixed(2),
        "stroke-dasharray": `${(r / 2.5).toFixed(2)} ${(r / 4).toFixed(2)}`,
        "stroke-opacity": "0.85",
      };
  const hollow = { fill: "#ffffff", "fill-opacity": "0.75" };
  const fill = confirmed && kind !== "suspicious-approach" ? { fill: colour } : hollow;
  if (kind === "actual-attack") return element("circle", { cx: x, cy: y, r, ...fill, ...line });
  if (kind === "attempted-attack") {
    const h = r * 1.2;
    const points = `${x},${y - h} ${x + h},${y + h * 0.8} ${x - h},${y + h * 0.8}`;
    return element("polygon", { points, ...fill, ...line });
  }
  if (kind === "suspicious-approach") {
    const h = r * 1.25;
    const points = `${x},${y - h} ${x + h},${y} ${x},${y + h} ${x - h},${y}`;
    return element("polygon", { points, ...hollow, ...line });
  }
  const s = r * 0.75;
  return element("rect", { x: x - s, y: y - s, width: 2 * s, height: 2 * s, ...fill, ...line });
}

// the part of box a that lies in box b, or null
export function intersect(a, b) {
  const box = [Math.max(a[0], b[0]), Math.max(a[1], b[1]), Math.min(a[2], b[2]), Math.min(a[3], b[3])];
  return box[0] < box[2] && box[1] < box[3] ? box : null;
}

// the view moved by (dx, dy) pixels and zoomed by factor around pixel (px, py)
export function moved(view, size, dx, dy, factor = 1, px = size[0] / 2, py = size[1] / 2) {
  const [west, south, east, north] = view;
  const perX = (east - west) / size[0];
  const perY = (north - south) / size[1];
  const lon = west + px * perX;
  const lat = north - py * perY;
  let spanX = (east - west) * factor;
  let spanY = (north - south) * factor;
  if (spanX < MIN_SPAN || spanY < MIN_SPAN) return view;
  if (spanX > 360 || spanY > 180) {
    const shrink = Math.min(360 / spanX, 180 / spanY);
    spanX *= shrink;
    spanY *= shrink;
  }
  let newWest = lon - (px / size[0]) * spanX - dx * perX * factor;
  let newNorth = lat + (py / size[1]) * spanY + dy * perY * factor;
  newWest = Math.min(Math.max(newWest, -180), 180 - spanX);
  newNorth = Math.min(Math.max(newNorth, -90 + spanY), 90);
  return [newWest, newNorth - spanY, newWest + spanX, newNorth];
}

function fixed(box) {
  return box.map((v) => v.toFixed(5)).join(",");
}

class IncidentMap {
  constructor(figure) {
    this.figure = figure;
    this.svg = figure.querySelector("svg.incident-map");
    this.size = [Number(this.svg.dataset.width), Number(this.svg.dataset.height)];
    this.view = this.svg.dataset.bbox.split(",").map(Number);
    this.home = this.view.slice();
    this.filter = new URLSearchParams(figure.dataset.query);
    this.within = this.filter.has("bbox") ? this.filter.get("bbox").split(",").map(Number) : null;
    this.filter.delete("bbox");
    this.land = this.svg.querySelector(".map-land");
    this.markers = this.svg.querySelector(".map-markers");
    this.link = figure.querySelector(".map-here");
    this.radius = Math.max(5, this.size[0] / 110);
    this.asked = 0;
    this.controls();
    this.gestures();
    this.load();
  }

  controls() {
    const bar = document.createElement("div");
    bar.className = "map-controls";
    const buttons = [
      ["+", "Zoom in", () => this.go(0, 0, 0.5)],
      ["\u2212", "Zoom out", () => this.go(0, 0, 2)],
      ["Reset", "Reset: back to the first view", () => this.reset()],
    ];
    for (const [label, words, action] of buttons) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "quiet";
      button.textContent = label;
      button.setAttribute("aria-label", words);
      button.addEventListener("click", action);
      bar.append(button);
    }
    const hint = document.createElement("p");
    hint.className = "note";
    hint.id = "map-hint";
    hint.textContent = "Drag or use the arrow keys to move; wheel, + and \u2212 to zoom.";
    bar.append(hint);
    this.figure.insertBefore(bar, this.svg);
    this.status = document.createElement("p");
    this.status.className = "visually-hidden";
    this.status.setAttribute("role", "status");
    this.figure.append(this.status);
    this.svg.setAttribute("tabindex", "0");
    this.svg.setAttribute("aria-describedby", "map-hint");
  }

  gestures() {
    this.svg.addEventListener("keydown", (event) => {
      const step = this.size[0] / 6;
      const keys = {
        ArrowLeft: [-step, 0, 1],
        ArrowRight: [step, 0, 1],
        ArrowUp: [0, -step, 1],
        ArrowDown: [0, step, 1],
        "+": [0, 0, 0.5],
        "=": [0, 0, 0.5],
        "-": [0, 0, 2],
      };
      const move = keys[event.key];
      if (!move) return;
      event.preventDefault();
      this.go(...move);
    });
    this.svg.addEventListener(
      "wheel",
      (event) => {
        event.preventDefault();
        const [px, py] = this.pixel(event);
        this.go(0, 0, event.deltaY < 0 ? 0.6 : 1 / 0.6, px, py);
      },
      { passive: false },
    );
    let start = null;
    this.svg.addEventListener("pointerdown", (event) => {
      start = this.pixel(event);
      this.svg.setPointerCapture(event.pointerId);
    });
    this.svg.addEventListener("pointermove", (event) => {
      if (!start) return;
      const [x, y] = this.pixel(event);
      const shift = `translate(${x - start[0]} ${y - start[1]})`;
      this.land.setAttribute("transform", shift);
      this.markers.setAttribute("transform", shift);
    });
    const end = (event) => {
      if (!start) return;
      const [x, y] = this.pixel(event);
      const [dx, dy] = [start[0] - x, start[1] - y];
      start = null;
      if (Math.abs(dx) + Math.abs(dy) < 3) {
        this.land.removeAttribute("transform");
        this.markers.removeAttribute("transform");
        return;
      }
      this.go(dx, dy, 1);
    };
    this.svg.addEventListener("pointerup", end);
    this.svg.addEventListener("pointercancel", end);
  }

  // the pointer's place in the picture's own pixels (the SVG is scaled to fit the page)
  pixel(event) {
    const rect = this.svg.getBoundingClientRect();
    const scale = this.size[0] / rect.width;
    return [(event.clientX - rect.left) * scale, (event.clientY - rect.top) * scale];
  }

  go(dx, dy, factor, px, py) {
    this.view = moved(this.view, this.size, dx, dy, factor, px, py);
    this.load();
  }

  reset() {
    this.view = this.home.slice();
    this.load();
  }

  async load() {
    const asked = ++this.asked;
    const view = this.view.slice();
    const size = `width=${this.size[0]}&height=${this.size[1]}`;
    const wanted = this.within ? intersect(view, this.within) : view;
    const points = new URLSearchParams(this.filter);
    if (wanted) points.set("bbox", fixed(wanted));
    const requests = [fetch(`/map/land.json?bbox=${fixed(view)}&${size}`, { credentials: "same-origin" })];
    if (wanted) {
      requests.push(fetch(`/map/points.json?${points}&${size}`, { credentials: "same-origin" }));
    }
    let answers;
    try {
      const responses = await Promise.all(requests);
      if (responses.some((r) => !r.ok)) throw new Error("refused");
      answers = await Promise.all(responses.map((r) => r.json()));
    } catch {
      this.status.textContent = "The map could not be updated; reload the page.";
      return;
    }
    if (asked !== this.asked) return; // a newer view was asked for meanwhile
    const found = answers[1] || { total: 0, points: [], clusters: [] };
    this.draw(view, answers[0].d, found);
  }

  draw(view, land, found) {
    const [west, south, east, north] = view;
    const sx = this.size[0] / (east - west);
    const sy = this.size[1] / (north - south);
    this.land.setAttribute("d", land);
    this.land.removeAttribute("transform");
    this.markers.removeAttribute("transform");
    const group = document.createDocumentFragment();
    // at least 5 screen pixels, however small the phone draws the picture
    const shown = this.svg.getBoundingClientRect().width || this.size[0];
    const r = Math.max(this.radius, (5 * this.size[0]) / shown);
    for (const p of found.points) {
      const x = (p.lon - west) * sx;
      const y = (north - p.lat) * sy;
      // a TLP:RED marker is left off printed maps (print.css), as the server's are
      const kind = p.red === true ? "marker tlp-red-marker" : "marker";
      const mark = element("g", { class: kind, "data-count": 1, "data-id": p.id });
      const state = p.confirmed ? "confirmed" : "unverified";
      mark.append(element("title", {}, `${p.id}: ${SINGULAR[p.kind] || "other"}, ${state}`));
      mark.append(markerShape(p.kind, p.confirmed, x, y, r));
      group.append(mark);
    }
    for (const c of found.clusters) {
      const x = (c.lon - west) * sx;
      const y = (north - c.lat) * sy;
      const mark = element("g", { class: "cluster", "data-count": c.count });
      mark.append(element("title", {}, `${c.count} incidents here; zoom in to see each one`));
      const size = r * (1.6 + Math.min(String(c.count).length, 5) * 0.25);
      mark.append(element("circle", { cx: x, cy: y, r: size, fill: "#ffffff", "fill-opacity": 0.9,
        stroke: INK, "stroke-width": (r / 3.5).toFixed(2) }));
      mark.append(element("text", { x, y: y + r * 0.45, "text-anchor": "middle",
        "font-size": (r * 1.3).toFixed(1), "font-weight": 700, fill: INK }, String(c.count)));
      group.append(mark);
    }
    this.markers.replaceChildren(group);
    this.svg.dataset.bbox = fixed(view);
    this.svg.dataset.drawn = String(found.total);
    const words = `${found.total} incident${found.total === 1 ? "" : "s"} in this view`;
    this.svg.setAttribute("aria-label", `Map of the incidents chosen: ${words}`);
    this.status.textContent = words;
    if (this.link) {
      const here = new URLSearchParams(this.filter);
      const shown = this.within ? intersect(view, this.within) : view;
      if (shown) here.set("bbox", fixed(shown.map((v, i) => (i % 2 ? Math.max(-90, Math.min(90, v)) : v))));
      this.link.href = `/map?${here}`;
    }
  }
}

const figure = document.getElementById("map");
if (figure && figure.querySelector("svg.incident-map")) new IncidentMap(figure);
