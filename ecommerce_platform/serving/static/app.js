// The web page of `ecommerce serve`: plain JavaScript, no library, every request to this server.
// Text from the API is always set with textContent (never parsed as HTML).
"use strict";

const MAX_ROWS_SHOWN = 500;

function $(id) { return document.getElementById(id); }

function show(el, on) { el.hidden = !on; }

async function call(method, url, body) {
  const options = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    throw new Error("the server could not be reached");
  }
  let data = null;
  try { data = await response.json(); } catch (err) { data = null; }
  if (!response.ok) {
    const message = data && data.error ? data.error : `HTTP ${response.status}`;
    throw new Error(message);
  }
  return data;
}

function formatCell(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") {
    return Number.isInteger(value) ? value.toLocaleString("en-GB") : value.toLocaleString("en-GB", { maximumFractionDigits: 4 });
  }
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

// Fill a <table> with rows (objects), columns = the keys in order of first appearance.
function fillTable(table, rows, columns, extra) {
  const cols = columns || [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const thead = table.tHead;
  const tbody = table.tBodies[0];
  thead.replaceChildren();
  tbody.replaceChildren();
  const head = thead.insertRow();
  for (const c of cols) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = c.replaceAll("_", " ");
    head.appendChild(th);
  }
  if (extra) { const th = document.createElement("th"); th.scope = "col"; th.textContent = extra.title; head.appendChild(th); }
  for (const r of rows.slice(0, MAX_ROWS_SHOWN)) {
    const tr = tbody.insertRow();
    for (const c of cols) {
      const td = tr.insertCell();
      const v = r[c];
      td.textContent = formatCell(v);
      if (typeof v === "number") td.className = "num";
    }
    if (extra) extra.cell(tr.insertCell(), r);
  }
  return cols;
}

function busy(button, statusEl, on, text) {
  button.disabled = on;
  statusEl.textContent = on ? text : "";
}

// ------------------------------------------------------------------------------------ ask
async function ask(event) {
  event.preventDefault();
  const question = $("question").value.trim();
  const error = $("ask-error");
  show(error, false);
  if (!question) { error.textContent = "Type a question first."; show(error, true); $("question").focus(); return; }
  busy($("ask-button"), $("ask-status"), true, "Answering…");
  const started = performance.now();
  try {
    const out = await call("POST", "/api/ask", { question });
    $("answer-kind").textContent = out.kind;
    $("answer-kind").dataset.kind = out.kind;
    $("answer").textContent = out.answer;
    $("definition").textContent = out.definition || "";
    show($("definition-block"), Boolean(out.definition));
    const sources = out.sources || [];
    if (sources.length) fillTable($("sources"), sources, ["stock_code", "description", "score"]);
    show($("sources-block"), sources.length > 0);
    $("sql").textContent = out.sql || "";
    show($("sql-block"), Boolean(out.sql));
    const rows = out.rows || [];
    if (rows.length) fillTable($("rows"), rows);
    $("rows-note").textContent = rows.length > MAX_ROWS_SHOWN
      ? `${rows.length.toLocaleString("en-GB")} rows; the first ${MAX_ROWS_SHOWN} shown.`
      : `${rows.length.toLocaleString("en-GB")} row${rows.length === 1 ? "" : "s"}.`;
    show($("rows-block"), out.rows !== null && out.rows !== undefined);
    show($("ask-result"), true);
    $("ask-status").textContent = `Answered in ${Math.round(performance.now() - started)} ms.`;
    $("ask-button").disabled = false;
  } catch (err) {
    busy($("ask-button"), $("ask-status"), false);
    show($("ask-result"), false);
    error.textContent = err.message;
    show(error, true);
  }
}

// ------------------------------------------------------------------------------------ recommendations
function similarButton(cell, row) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "link";
  b.textContent = "similar";
  b.setAttribute("aria-label", `Products similar to ${row.stock_code}`);
  b.addEventListener("click", () => {
    $("stock-code").value = row.stock_code;
    $("similar-form").requestSubmit();
    $("sim-title").scrollIntoView();
  });
  cell.appendChild(b);
}

async function recommend(event) {
  event.preventDefault();
  const id = $("customer-id").value.trim();
  const error = $("rec-error");
  show(error, false);
  if (!id) { error.textContent = "Type a customer id first."; show(error, true); $("customer-id").focus(); return; }
  const params = new URLSearchParams({ n: $("rec-n").value || "10", mode: $("rec-mode").value });
  if ($("cold-start").checked) params.set("cold_start", "true");
  busy($("recommend-button"), $("rec-status"), true, "Looking up…");
  try {
    const out = await call("GET", `/api/recommend/${encodeURIComponent(id)}?${params}`);
    $("rec-summary").textContent = out.known_customer
      ? `Customer ${out.customer_id} (${out.mode}; ${out.purchased_products} products bought so far; model run ${out.model_run_id}):`
      : out.message;
    fillTable($("recommendations"), out.items, ["rank", "stock_code", "description", "score", ...(out.known_customer ? ["reorder"] : [])],
      { title: "more", cell: similarButton });
    show($("rec-result"), true);
    busy($("recommend-button"), $("rec-status"), false);
    $("rec-status").textContent = `${out.items.length} products.`;
  } catch (err) {
    busy($("recommend-button"), $("rec-status"), false);
    show($("rec-result"), false);
    error.textContent = err.message;
    show(error, true);
  }
}

// ------------------------------------------------------------------------------------ similar
async function similar(event) {
  event.preventDefault();
  const code = $("stock-code").value.trim();
  const error = $("sim-error");
  show(error, false);
  if (!code) { error.textContent = "Type a stock code first."; show(error, true); $("stock-code").focus(); return; }
  busy($("similar-button"), $("sim-status"), true, "Looking up…");
  try {
    const out = await call("GET", `/api/similar/${encodeURIComponent(code)}?n=${encodeURIComponent($("sim-n").value || "10")}`);
    $("sim-summary").textContent = `Products similar to ${out.stock_code} (${out.description || "no description"}), sharing at least ${out.min_shared_buyers} of its ${out.buyers} buyers:`;
    fillTable($("similar"), out.items, ["rank", "stock_code", "description", "score", "shared_buyers"]);
    show($("sim-result"), true);
    busy($("similar-button"), $("sim-status"), false);
    $("sim-status").textContent = `${out.items.length} products.`;
  } catch (err) {
    busy($("similar-button"), $("sim-status"), false);
    show($("sim-result"), false);
    error.textContent = err.message;
    show(error, true);
  }
}

// ------------------------------------------------------------------------------------ health
async function health() {
  try {
    const h = await call("GET", "/api/health");
    const m = h.models;
    const parts = [`Deployment ${h.deployment}`, `data ${h.data.first_day || "?"} to ${h.data.last_day || "?"} (version ${h.data.version || "none"})`];
    for (const [name, info] of Object.entries(m)) {
      parts.push(`${name.replaceAll("_", " ")}: ${info.served ? (info.run_id || info.build_id || "served") : "not served"}`);
    }
    $("health").textContent = `${h.status === "ok" ? "Serving" : "Degraded"}. ${parts.join(" · ")}.`;
  } catch (err) {
    $("health").textContent = `Health unknown: ${err.message}`;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("ask-form").addEventListener("submit", ask);
  $("recommend-form").addEventListener("submit", recommend);
  $("similar-form").addEventListener("submit", similar);
  health();
});
