// Draws an archsearch diagram spec (archsearch/report/diagram.py) as an SVG arc diagram.
//
//   spec = {panels: [{title, nodes: [label, ...], edges: [[src, dst, label], ...]}]}
//   window.archsearchDiagram(spec, {layout: "column" | "row"}) -> <svg> element
//
// One layout fits chains, multi-branch networks and cells alike: nodes sit left to right
// in topological order, so every edge points right; an edge between neighbours is a
// straight arrow, a longer one an arc whose height grows with its span.  No DOM
// measurement (text width is estimated), no randomness: a spec always gives the same SVG.
(function () {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";
  const FONT = 12;              // px, node and edge labels
  const CHAR_W = 7;             // px per character at 12 px: an estimate, no measuring
  const NODE_H = 24;
  const NODE_PAD = 8;           // px of box on each side of a node's label
  const MIN_GAP = 26;           // px between neighbouring boxes: room for an arrowhead
  const ARC_BASE = 12, ARC_STEP = 16;  // arc height = base + step * span
  const LABEL_H = 16;           // px, an edge label's white box
  const TITLE_H = 22, MARGIN = 10, PANEL_GAP = 16;
  const PLAIN = "#6b7280";      // an edge without a label
  // No grey in the palette: grey means "no label".
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                   "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#393b79"];
  // The built-in spaces' labels get distinct colours in a fixed order (the NB201 and DARTS
  // ops, 9 in all; the merges never share a drawing with cell ops); any other label is
  // hashed.  Either way a label has one colour on the whole page, whatever the drawing order.
  const KNOWN = ["skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3",
                 "max_pool_3x3", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"];
  const MERGES = {sum: PALETTE[0], concat: PALETTE[1]};

  function colour(label) {
    if (!label) return PLAIN;
    if (Object.prototype.hasOwnProperty.call(MERGES, label)) return MERGES[label];
    const known = KNOWN.indexOf(label);
    if (known >= 0) return PALETTE[known];
    let hash = 0;
    for (let i = 0; i < label.length; i++) hash = (hash * 31 + label.charCodeAt(i)) >>> 0;
    return PALETTE[hash % PALETTE.length];
  }

  function el(name, attrs, parent, text) {
    const node = document.createElementNS(NS, name);
    for (const key in attrs) node.setAttribute(key, String(attrs[key]));
    if (text !== undefined) node.textContent = text;  // textContent: labels are never markup
    if (parent) parent.appendChild(node);
    return node;
  }

  const textWidth = (text) => String(text).length * CHAR_W;

  // Label with a white backing box, so it stays legible where it crosses other edges.
  function label(parent, x, y, text, fill, tooltip) {
    parent = el("g", {class: "edge-label"}, parent);
    el("title", {}, parent, tooltip);
    const w = textWidth(text) + 6;
    el("rect", {x: x - w / 2, y: y - LABEL_H / 2, width: w, height: LABEL_H, rx: 3,
                fill: "#fff"}, parent);
    el("text", {x: x, y: y + 4, "text-anchor": "middle", "font-size": FONT - 1, fill: fill},
       parent, text);
  }

  // A filled triangle whose tip is (x, y), pointing along (dx, dy).  Drawn per edge
  // instead of with <marker>, whose ids would clash between several SVGs on one page.
  function arrowhead(parent, x, y, dx, dy, fill) {
    const len = Math.hypot(dx, dy) || 1, ux = dx / len, uy = dy / len;
    const bx = x - 8 * ux, by = y - 8 * uy;
    const pts = [[x, y], [bx - 4 * uy, by + 4 * ux], [bx + 4 * uy, by - 4 * ux]];
    el("path", {d: "M" + pts.map((p) => p[0].toFixed(1) + "," + p[1].toFixed(1)).join("L") + "Z",
                fill: fill}, parent);
  }

  // Positions first, so a panel knows its size before anything is drawn.  The gap after
  // node i is wide enough for the label of a straight edge i -> i+1.
  function layoutPanel(panel) {
    const edges = panel.edges.map((e) => ({src: e[0], dst: e[1], text: String(e[2] || "")}));
    const gaps = panel.nodes.map(() => MIN_GAP);
    edges.forEach((e) => {
      if (e.dst === e.src + 1 && e.text) gaps[e.src] = Math.max(gaps[e.src], textWidth(e.text) + 24);
    });
    const boxes = [];
    let x = MARGIN;
    panel.nodes.forEach((text, i) => {
      const w = Math.max(36, textWidth(text) + 2 * NODE_PAD);
      boxes.push({x: x, w: w, cx: x + w / 2, text: String(text)});
      x += w + gaps[i];
    });
    // Long edges alternate above and below so that arcs of one node spread out.  A label
    // that would cover one already placed tries the other side, then a taller arc, so no
    // label hides another (the apex is halfway between the nodes, whatever the anchors).
    const placed = {above: [], below: []};
    const clash = (where, x, half, h) => placed[where].some(
      (p) => Math.abs(p.x - x) < p.half + half && Math.abs(p.h - h) < LABEL_H);
    let above = 0, below = 0, side = 0;
    edges.forEach((e) => {
      e.straight = e.dst === e.src + 1;
      if (e.straight) return;
      e.h = ARC_BASE + ARC_STEP * (e.dst - e.src);
      let where = side++ % 2 === 0 ? "above" : "below";
      if (e.text) {
        const x = (boxes[e.src].cx + boxes[e.dst].cx) / 2, half = textWidth(e.text) / 2 + 3;
        const other = where === "above" ? "below" : "above";
        if (clash(where, x, half, e.h) && !clash(other, x, half, e.h)) where = other;
        while (clash(where, x, half, e.h)) e.h += LABEL_H;
        placed[where].push({x, half, h: e.h});
      }
      e.up = where === "above";
      const room = e.h + (e.text ? 10 : 4);
      if (e.up) above = Math.max(above, room); else below = Math.max(below, room);
    });
    const lastGap = gaps.length ? gaps[gaps.length - 1] : 0;
    const width = Math.max(x - lastGap + MARGIN, textWidth(panel.title) + 2 * MARGIN);
    const rowY = TITLE_H + above + NODE_H / 2;   // the vertical centre of the node row
    return {boxes, edges, width, rowY, height: rowY + NODE_H / 2 + below + MARGIN};
  }

  // Labels go to their own layer, above every edge, so no later edge crosses a label.
  function drawEdge(g, labels, lay, e, nodes) {
    const a = lay.boxes[e.src], b = lay.boxes[e.dst], fill = colour(e.text);
    const group = el("g", {class: "edge"}, g);
    const tooltip = nodes[e.src] + " \u2192 " + nodes[e.dst] + (e.text ? ": " + e.text : "");
    el("title", {}, group, tooltip);
    const y = lay.rowY;
    if (e.straight) {
      const x1 = a.x + a.w, x2 = b.x;
      el("path", {d: `M${x1},${y}L${x2 - 2},${y}`, stroke: fill, "stroke-width": 1.5, fill: "none"}, group);
      arrowhead(group, x2, y, 1, 0, fill);
      if (e.text) label(labels, (x1 + x2) / 2, y - 11, e.text, fill, tooltip);
      return;
    }
    // Anchors move off the box centre by the span, so arrowheads of different arcs into
    // one node do not land on the same spot.
    const shift = Math.min(4 * (e.dst - e.src), a.w / 2 - 6, b.w / 2 - 6);
    const sign = e.up ? -1 : 1, yEdge = y + sign * NODE_H / 2;
    const x1 = a.cx + shift, x2 = b.cx - shift, xm = (x1 + x2) / 2;
    // A quadratic Bezier peaks halfway to its control point: control at 2h gives apex h.
    const yc = yEdge + sign * 2 * e.h;
    el("path", {d: `M${x1},${yEdge}Q${xm},${yc} ${x2},${yEdge}`, stroke: fill,
                "stroke-width": 1.5, fill: "none"}, group);
    arrowhead(group, x2, yEdge, x2 - xm, yEdge - yc, fill);
    if (e.text) label(labels, xm, yEdge + sign * e.h, e.text, fill, tooltip);
  }

  function drawPanel(svg, panel, lay, dx, dy) {
    const g = el("g", {class: "panel", transform: `translate(${dx},${dy})`}, svg);
    el("text", {x: MARGIN, y: 15, "font-size": FONT + 1, "font-weight": "bold", fill: "#111"},
       g, panel.title);
    const edges = el("g", {}, g), labels = el("g", {}, g);
    lay.edges.forEach((e) => drawEdge(edges, labels, lay, e, panel.nodes));
    // Boxes last, so arrows end under their border and labels are never crossed.
    lay.boxes.forEach((b) => {
      const node = el("g", {class: "node"}, g);
      el("title", {}, node, b.text);
      el("rect", {x: b.x, y: lay.rowY - NODE_H / 2, width: b.w, height: NODE_H, rx: 6,
                  fill: "#f3f4f6", stroke: "#4b5563"}, node);
      el("text", {x: b.cx, y: lay.rowY + 4, "text-anchor": "middle", "font-size": FONT,
                  fill: "#111"}, node, b.text);
    });
  }

  window.archsearchDiagram = function (spec, options) {
    const row = (options || {}).layout === "row";   // panels side by side; default: stacked
    const panels = (spec && spec.panels) || [];
    const lays = panels.map(layoutPanel);
    let width = 0, height = 0;
    lays.forEach((lay) => {
      width = row ? width + lay.width + (width ? PANEL_GAP : 0) : Math.max(width, lay.width);
      height = row ? Math.max(height, lay.height) : height + lay.height + (height ? PANEL_GAP : 0);
    });
    width = Math.ceil(width); height = Math.ceil(height);
    const edgeCount = lays.reduce((n, lay) => n + lay.edges.length, 0);
    const svg = el("svg", {class: "archsearch-diagram", width: width, height: height,
                           viewBox: `0 0 ${width} ${height}`, "data-edges": edgeCount,
                           "font-family": "sans-serif", role: "img"});
    svg.style.maxWidth = "100%";   // scales down in a narrow column; viewBox keeps proportions
    svg.style.height = "auto";
    let offset = 0;
    lays.forEach((lay, p) => {
      drawPanel(svg, panels[p], lay, row ? offset : 0, row ? 0 : offset);
      offset += (row ? lay.width : lay.height) + PANEL_GAP;
    });
    return svg;
  };
})();
