// The state machine as SVG, laid out from its definition (the ASL the executor runs): each
// state in a layer by its longest distance from StartAt, so every transition points down;
// within a layer, ordered by where the states that lead to it sit. Edges for Next, Default,
// every Choice and every Catch (dashed). `mark` then sets the classes that tell what one
// execution did: visited, current, errored (an error was caught there), failed.

const SVG = "http://www.w3.org/2000/svg";
const NODE_W = 210;
const NODE_H = 40;
const GAP_X = 24;
const GAP_Y = 34;
const PAD = 16;

/// Every transition of the definition: {from, to, kind} with kind next | choice | default | catch.
export function transitions(def) {
  const out = [];
  for (const [name, s] of Object.entries(def.States)) {
    if (s.Next) out.push({ from: name, to: s.Next, kind: "next" });
    for (const c of s.Choices || []) out.push({ from: name, to: c.Next, kind: "choice" });
    if (s.Default) out.push({ from: name, to: s.Default, kind: "default" });
    for (const c of s.Catch || []) out.push({ from: name, to: c.Next, kind: "catch" });
  }
  return out;
}

function layers(def, edges) {
  const names = Object.keys(def.States);
  const layer = new Map([[def.StartAt, 0]]);
  // Longest path by relaxation; a cycle (none in a valid saga) stops growing at the cap.
  for (let round = 0; round < names.length; round++) {
    let changed = false;
    for (const e of edges) {
      const from = layer.get(e.from);
      if (from === undefined) continue;
      const to = layer.get(e.to);
      if ((to === undefined || to < from + 1) && from + 1 < names.length) {
        layer.set(e.to, from + 1);
        changed = true;
      }
    }
    if (!changed) break;
  }
  for (const n of names) if (!layer.has(n)) layer.set(n, 0);
  return layer;
}

/// Positions of every state: Map name -> {x, y, layer}, and the drawing's size.
export function layout(def) {
  const edges = transitions(def);
  const layer = layers(def, edges);
  const rows = [];
  // First seen depth-first from StartAt, the happy path first: a stable start order.
  const seen = [];
  const visit = (n) => {
    if (seen.includes(n) || !def.States[n]) return;
    seen.push(n);
    for (const e of edges.filter((e) => e.from === n)) visit(e.to);
  };
  visit(def.StartAt);
  for (const n of Object.keys(def.States)) if (!seen.includes(n)) seen.push(n);
  for (const n of seen) {
    const l = layer.get(n);
    (rows[l] = rows[l] || []).push(n);
  }
  const pos = new Map();
  const place = () => {
    rows.forEach((row, l) => row.forEach((n, i) => pos.set(n, { x: i, y: l, layer: l })));
  };
  place();
  // Two sweeps of barycentres: a state sits under the states that lead to it.
  for (let sweep = 0; sweep < 2; sweep++) {
    for (const row of rows.slice(1)) {
      const centre = (n) => {
        const parents = edges.filter((e) => e.to === n && pos.get(e.from).y < pos.get(n).y);
        if (!parents.length) return pos.get(n).x;
        return parents.reduce((sum, e) => sum + pos.get(e.from).x, 0) / parents.length;
      };
      const keyed = row.map((n, i) => [centre(n), i, n]);
      keyed.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      row.splice(0, row.length, ...keyed.map((k) => k[2]));
      place();
    }
  }
  const widest = Math.max(...rows.map((r) => r.length));
  const width = PAD * 2 + widest * NODE_W + (widest - 1) * GAP_X;
  for (const row of rows) {
    const rowWidth = row.length * NODE_W + (row.length - 1) * GAP_X;
    const left = (width - rowWidth) / 2;
    row.forEach((n, i) => {
      const p = pos.get(n);
      p.x = left + i * (NODE_W + GAP_X);
      p.y = PAD + p.layer * (NODE_H + GAP_Y);
    });
  }
  const height = PAD * 2 + rows.length * NODE_H + (rows.length - 1) * GAP_Y;
  return { pos, edges, width, height };
}

function el(name, attrs, parent) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (parent) parent.appendChild(e);
  return e;
}

/// A long CamelCase name on two lines: before its "At" if it has one (CompensationFailedAt…),
/// else at the capital nearest its middle.
function lines(name) {
  if (name.length <= 24) return [name];
  const at = name.search(/At[A-Z]/);
  if (at > 0) return [name.slice(0, at + 2), name.slice(at + 2)];
  let best = -1;
  for (let i = 1; i < name.length; i++) {
    if (/[A-Z]/.test(name[i]) && (best < 0 || Math.abs(i - name.length / 2) < Math.abs(best - name.length / 2))) {
      best = i;
    }
  }
  return best < 0 ? [name] : [name.slice(0, best), name.slice(best)];
}

/// Draws `def` into `container` (replacing what it held); returns the drawing for `mark`.
export function render(container, def) {
  const { pos, edges, width, height } = layout(def);
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "machine", role: "img" });
  el("title", {}, svg).textContent = "The saga's state machine";
  const defs = el("defs", {}, svg);
  const marker = el("marker", {
    id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
    markerWidth: 9, markerHeight: 9, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse",
  }, defs);
  el("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }, marker);
  const edgeLayer = el("g", { class: "edges" }, svg);
  const nodeLayer = el("g", { class: "states" }, svg);
  const drawnEdges = [];
  for (const e of edges) {
    const a = pos.get(e.from);
    const b = pos.get(e.to);
    if (!a || !b) continue;
    const x1 = a.x + NODE_W / 2;
    const y1 = a.y + NODE_H;
    const x2 = b.x + NODE_W / 2;
    const y2 = b.y;
    const bend = Math.max(GAP_Y, (y2 - y1) / 2);
    const path = el("path", {
      d: `M${x1},${y1} C${x1},${y1 + bend} ${x2},${y2 - bend} ${x2},${y2}`,
      class: `edge ${e.kind}`,
      "marker-end": "url(#arrow)",
      "data-from": e.from,
      "data-to": e.to,
    }, edgeLayer);
    drawnEdges.push({ ...e, el: path });
  }
  const nodes = new Map();
  for (const [name, s] of Object.entries(def.States)) {
    const p = pos.get(name);
    const g = el("g", {
      class: `state ${s.Type.toLowerCase()}`,
      "data-state": name,
      transform: `translate(${p.x},${p.y})`,
    }, nodeLayer);
    el("title", {}, g).textContent = `${name} (${s.Type})${s.Comment ? ": " + s.Comment : ""}`;
    const rx = s.Type === "Choice" ? 18 : 6;
    el("rect", { width: NODE_W, height: NODE_H, rx, ry: rx }, g);
    const text = lines(name);
    text.forEach((line, i) => {
      const t = el("text", {
        x: NODE_W / 2,
        y: NODE_H / 2 + (i - (text.length - 1) / 2) * 14 + 4,
        "text-anchor": "middle",
      }, g);
      t.textContent = line;
    });
    nodes.set(name, g);
  }
  container.replaceChildren(svg);
  return { nodes, edges: drawnEdges };
}

const MARKS = ["visited", "current", "errored", "failed", "waiting"];

/// Sets the classes of one execution on a drawing: `marks` holds Sets `visited`, `errored`,
/// `taken` ("from>to"), and the names `current`, `failed` and whether `waiting` (or null).
export function mark(drawn, marks) {
  for (const [name, g] of drawn.nodes) {
    for (const m of MARKS) g.classList.remove(m);
    if (marks.visited.has(name)) g.classList.add("visited");
    if (marks.errored.has(name)) g.classList.add("errored");
    if (marks.current === name) g.classList.add("current");
    if (marks.current === name && marks.waiting) g.classList.add("waiting");
    if (marks.failed === name) g.classList.add("failed");
  }
  for (const e of drawn.edges) {
    e.el.classList.toggle("taken", marks.taken.has(`${e.from}>${e.to}`));
  }
}
