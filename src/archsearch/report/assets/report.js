// The report page's behaviour: plots from the figures Python built, the trials table
// (sortable, a page of rows at a time so 10,000 trials open fast), architecture drawings
// (window.archsearchDiagram, diagram.js) and the panel a click on a trial opens.
// Every text from the record goes into the DOM as textContent, never as markup.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const PAGE_ROWS = 100;
  const table = data.table;
  const archs = data.archs || {strings: [], specs: [], texts: []};
  const details = data.details || {metrics: [], values: [], errors: {}, note: ""};
  const rowOfTrial = new Map();
  if (data.kind === "study") table.rows.forEach((row, i) => rowOfTrial.set(row[0], i));

  function make(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const key in attrs || {}) node.setAttribute(key, attrs[key]);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Numbers as archsearch prints them: 12,345 for a large whole number, else 5 digits.
  function fmt(value) {
    if (value === null || value === undefined) return "";
    if (typeof value !== "number") return String(value);
    if (Number.isInteger(value) && Math.abs(value) >= 100) return value.toLocaleString("en-US");
    return String(Number(value.toPrecision(5)));
  }

  // A spec packed by archs.py ([[title, [node, ...], [src, dst, label, ...]], ...] over
  // the string table) back to the diagram contract.
  function spec(index) {
    const s = archs.strings;
    return {panels: archs.specs[index].map(([title, nodes, flat]) => {
      const edges = [];
      for (let i = 0; i < flat.length; i += 3) edges.push([flat[i], flat[i + 1], s[flat[i + 2]]]);
      return {title: s[title], nodes: nodes.map((n) => s[n]), edges: edges};
    })};
  }

  function drawing(index) {
    const box = make("div", {class: "drawing"});
    try {
      box.appendChild(window.archsearchDiagram(spec(index)));
    } catch (err) {  // one bad drawing must not stop the page; the error still shows
      console.error("archsearch report: cannot draw architecture", index, err);
      box.appendChild(make("code", {}, archs.texts[index]));
    }
    return box;
  }

  // -- the panel a click on a trial opens ------------------------------------------------
  const panel = document.getElementById("trial-detail");

  function showTrial(number) {
    const row = rowOfTrial.get(number);
    if (row === undefined) return;
    const values = table.rows[row];
    panel.replaceChildren();
    const close = make("button", {type: "button", class: "close", "aria-label": "close"}, "×");
    close.addEventListener("click", () => { panel.hidden = true; });
    panel.append(close, make("h3", {}, "trial " + number));
    const list = make("dl");
    table.columns.forEach((column, c) => {
      if (column.type === "arch" || c === 0 || values[c] === null) return;
      list.append(make("dt", {}, column.name), make("dd", {}, fmt(values[c])));
    });
    const shown = new Set(table.columns.map((c) => c.name));
    details.metrics.forEach((name, m) => {
      const value = (details.values[row] || [])[m];
      if (!shown.has(name) && value !== null && value !== undefined) {
        list.append(make("dt", {}, name), make("dd", {}, fmt(value)));
      }
    });
    panel.appendChild(list);
    if (details.note) panel.appendChild(make("p", {class: "note"}, details.note));
    const error = details.errors[String(number)];
    if (error) panel.appendChild(make("pre", {class: "error"}, error));
    const arch = values[table.columns.length - 1];
    panel.append(make("code", {class: "arch"}, archs.texts[arch]), drawing(arch));
    panel.hidden = false;
  }

  // -- the best architectures, drawn on the page ----------------------------------------
  const drawings = document.getElementById("drawings");
  if (drawings) {
    (data.drawn || []).forEach((item) => {
      const figure = make("figure", {"data-trial": item.trial});
      figure.appendChild(drawing(item.arch));
      const caption = make("figcaption", {}, item.caption);
      caption.addEventListener("click", () => showTrial(item.trial));
      figure.appendChild(caption);
      drawings.appendChild(figure);
    });
    if (!(data.drawn || []).length) drawings.appendChild(make("p", {class: "note"}, "no completed trial to draw"));
  }

  // -- the trials table -----------------------------------------------------------------
  const tableElement = document.getElementById("trials-table");
  const pager = document.getElementById("trials-table-pager");
  let order = table.rows.map((_, i) => i);
  let sorted = {column: -1, descending: false};
  let page = 0;

  function cellText(column, value) {
    return column.type === "arch" ? archs.texts[value] : fmt(value);
  }

  function compare(column) {
    const c = table.columns[column];
    const key = c.type === "arch" ? (i) => archs.texts[table.rows[i][column]] : (i) => table.rows[i][column];
    return (a, b) => {
      const x = key(a), y = key(b);
      if (x === null || x === undefined) return y === null || y === undefined ? a - b : 1;
      if (y === null || y === undefined) return -1;  // missing values last, either way
      const diff = c.type === "num" ? x - y : String(x).localeCompare(String(y));
      return (sorted.descending ? -diff : diff) || a - b;
    };
  }

  // The header is built once; a sort only moves its aria-sort mark (a test, or a screen
  // reader, keeps hold of the same cells).
  function renderHead() {
    const row = make("tr");
    table.columns.forEach((column, c) => {
      const th = make("th", {scope: "col", "data-type": column.type}, column.name);
      th.addEventListener("click", () => {
        sorted = {column: c, descending: sorted.column === c ? !sorted.descending : column.type === "num" && c > 0};
        order = table.rows.map((_, i) => i).sort(compare(c));
        page = 0;
        row.querySelectorAll("th").forEach((cell, k) => {
          if (k === c) cell.setAttribute("aria-sort", sorted.descending ? "descending" : "ascending");
          else cell.removeAttribute("aria-sort");
        });
        renderBody();
      });
      row.appendChild(th);
    });
    tableElement.tHead.replaceChildren(row);
  }

  function renderBody() {
    const pages = Math.max(1, Math.ceil(order.length / PAGE_ROWS));
    page = Math.min(Math.max(page, 0), pages - 1);
    const body = document.createDocumentFragment();
    order.slice(page * PAGE_ROWS, (page + 1) * PAGE_ROWS).forEach((i) => {
      const values = table.rows[i];
      const tr = make("tr", {"data-row": i});
      table.columns.forEach((column, c) => {
        const text = cellText(column, values[c]);
        const td = make("td", {class: "t-" + column.type}, text);
        if (column.type === "arch") td.title = text;
        if (column.name === "state") td.dataset.state = String(values[c]).split(" ")[0];
        tr.appendChild(td);
      });
      if (data.kind === "study") tr.addEventListener("click", () => showTrial(values[0]));
      body.appendChild(tr);
    });
    tableElement.tBodies[0].replaceChildren(body);
    renderPager(pages);
  }

  function renderPager(pages) {
    const first = order.length ? page * PAGE_ROWS + 1 : 0;
    const last = Math.min((page + 1) * PAGE_ROWS, order.length);
    const previous = make("button", {type: "button", "data-page": "previous"}, "‹ previous");
    const next = make("button", {type: "button", "data-page": "next"}, "next ›");
    previous.disabled = page === 0;
    next.disabled = page >= pages - 1;
    previous.addEventListener("click", () => { page -= 1; renderBody(); });
    next.addEventListener("click", () => { page += 1; renderBody(); });
    const where = make("span", {class: "where"},
      `rows ${fmt(first)}–${fmt(last)} of ${fmt(order.length)} (page ${page + 1} of ${pages})`);
    pager.replaceChildren(previous, where, next);
  }

  if (tableElement) {
    renderHead();
    renderBody();
  }

  // -- plots ------------------------------------------------------------------------------
  const config = {displaylogo: false, responsive: true,
                  modeBarButtonsToRemove: ["select2d", "lasso2d"]};
  const plotted = Object.keys(data.figures || {}).map((id) => {
    const figure = data.figures[id];
    const element = document.getElementById(id);
    return Plotly.newPlot(element, figure.data, figure.layout, config).then(() => {
      const meta = figure.layout.meta || {};
      if (!meta.trial || data.kind !== "study") return;
      element.on("plotly_click", (event) => {
        const point = event.points && event.points[0];
        const number = point ? point[meta.trial] : undefined;
        if (number !== null && number !== undefined) showTrial(Number(number));
      });
    });
  });
  Promise.all(plotted).then(() => {
    // The page's own clock (ms since navigation) when everything is drawn, for open-time checks.
    window.archsearchReadyAt = performance.now();
    document.body.dataset.ready = "1";
  });
})();
