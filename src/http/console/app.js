// The operations console: orders live (polled every second) with counts and filters, one
// order with its saga drawn and marked, and the repairs (cancel, redrive, retry). All data
// comes from the admin API (`api.js`); text is written with textContent only.

import { ApiError, call, setToken, token } from "./api.js";
import { mark, render } from "./graph.js";
import { refreshAttention } from "./attention.js";

const $ = (id) => document.getElementById(id);
const CANCELLABLE = ["PENDING", "INVENTORY_RESERVED", "AWAITING_PAYMENT", "PAYMENT_PROCESSED"];
const PAGE = 50;

const ui = { def: null, drawn: null, selected: null, older: [], errors: new Map(), tick: 0 };

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function button(text, onClick, className) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  if (className) b.className = className;
  b.addEventListener("click", onClick);
  return b;
}

function statusBadge(status) {
  const s = document.createElement("span");
  s.className = `status s-${status}`;
  s.textContent = status;
  return s;
}

const time = (iso) => (iso ? iso.replace("T", " ").replace(/\.\d+Z$|Z$/, "") : "");
const money = (n, currency) => `${Number(n).toFixed(2)} ${currency || "EUR"}`;

function millis(ms) {
  if (!Number.isFinite(ms) || ms < 0) return "";
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}

const duration = (from, to) => (from && to ? millis(Date.parse(to) - Date.parse(from)) : "");

/// Errors by source, shown together; a source that succeeds again clears its own.
function report(source, error) {
  if (error) {
    ui.errors.set(source, error.message || String(error));
    if (error instanceof ApiError && error.status === 401) {
      setToken(null);
      askToken("The token was refused: enter an admin token.");
    }
  } else {
    ui.errors.delete(source);
  }
  const box = $("error");
  box.textContent = [...ui.errors.values()].join(" · ");
  box.hidden = ui.errors.size === 0;
}

function askToken(message) {
  $("main").hidden = true;
  $("token-form").hidden = false;
  if (message) report("token", new Error(message));
}

// ---- the list ---------------------------------------------------------------------------

function listQuery(cursor) {
  const q = new URLSearchParams({ limit: String(PAGE) });
  const status = $("status-filter").value;
  const customer = $("customer-filter").value.trim();
  if (status) q.set("status", status);
  if (customer) q.set("customerId", customer);
  if (cursor) q.set("cursor", cursor);
  return `/admin/orders?${q}`;
}

function renderCounts(counts) {
  const box = $("counts");
  const select = $("status-filter");
  if (select.options.length === 1) {
    for (const c of counts) select.add(new Option(c.status, c.status));
  }
  box.replaceChildren(
    ...counts.map((c) => {
      const b = button("", () => {
        select.value = select.value === c.status ? "" : c.status;
        filtersChanged();
      }, `count s-${c.status}`);
      b.dataset.status = c.status;
      b.classList.toggle("active", select.value === c.status);
      const n = document.createElement("strong");
      n.textContent = String(c.count);
      b.append(`${c.status} `, n);
      return b;
    }),
  );
}

function orderRow(o) {
  const tr = document.createElement("tr");
  tr.dataset.orderId = o.orderId;
  tr.classList.toggle("selected", o.orderId === ui.selected);
  cell(tr, time(o.createdAt));
  cell(tr, o.orderId.slice(0, 8), "mono").title = o.orderId;
  cell(tr, o.customerId);
  cell(tr, money(o.totalAmount, o.currency), "num");
  cell(tr, "", "status-cell").appendChild(statusBadge(o.status));
  tr.addEventListener("click", () => openOrder(o.orderId));
  return tr;
}

let firstPage = { orders: [], nextCursor: null };

function renderOrders() {
  const seen = new Set(firstPage.orders.map((o) => o.orderId));
  const rows = [...firstPage.orders, ...ui.older.filter((o) => !seen.has(o.orderId))];
  $("orders").tBodies[0].replaceChildren(...rows.map(orderRow));
  const cursor = ui.older.length ? ui.olderCursor : firstPage.nextCursor;
  $("more").hidden = !cursor;
}

async function refreshOrders() {
  const page = await call(listQuery());
  firstPage = page;
  renderCounts(page.counts);
  renderOrders();
}

async function loadOlder() {
  const cursor = ui.older.length ? ui.olderCursor : firstPage.nextCursor;
  if (!cursor) return;
  const page = await call(listQuery(cursor));
  ui.older.push(...page.orders);
  ui.olderCursor = page.nextCursor;
  renderOrders();
}

function filtersChanged() {
  ui.older = [];
  ui.olderCursor = null;
  refreshOrders().then(() => report("orders"), (e) => report("orders", e));
}

// ---- one order --------------------------------------------------------------------------

function openOrder(id) {
  ui.selected = id;
  if (location.hash !== `#order/${id}`) history.replaceState(null, "", `#order/${id}`);
  $("detail").hidden = false;
  for (const tr of $("orders").tBodies[0].rows) {
    tr.classList.toggle("selected", tr.dataset.orderId === id);
  }
  refreshDetail().then(() => report("detail"), (e) => report("detail", e));
}

function closeOrder() {
  ui.selected = null;
  ui.execution = null;
  $("detail").hidden = true;
  history.replaceState(null, "", location.pathname);
}

function fact(dl, term, value) {
  if (value === undefined || value === null || value === "") return;
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  dd.textContent = String(value);
  dl.append(dt, dd);
}

function renderFacts(order, summary) {
  const dl = $("d-facts");
  dl.replaceChildren();
  fact(dl, "Customer", order.customerId);
  fact(dl, "Total", `${money(order.totalAmount, order.currency)} (subtotal ${money(order.subtotal)}, discount ${money(order.discount)})`);
  fact(dl, "Items", order.items.map((i) => `${i.quantity} × ${i.productId} @ ${money(i.price)}`).join(", "));
  fact(dl, "Created", time(order.createdAt));
  fact(dl, "Updated", time(order.updatedAt));
  fact(dl, "Payment method", order.paymentMethod);
  if (order.payment) fact(dl, "Payment", `${order.payment.paymentId} ${order.payment.status}`);
  if (order.shipment) fact(dl, "Shipment", `${order.shipment.trackingNumber} shipped ${time(order.shipment.shippedAt)}`);
  fact(dl, "Voucher redeemed", order.voucherCode);
  if (order.voucherIssued) {
    const v = order.voucherIssued;
    fact(dl, "Voucher issued", `${v.voucherCode} (${money(v.discount)} off, ${v.status})`);
  }
  fact(dl, "Failure", order.failureReason);
  if (order.cancellationRequested) fact(dl, "Cancellation", order.cancellationReason || "requested");
  fact(dl, "Execution", summary.executionName);
}

function renderSteps(steps) {
  $("steps").tBodies[0].replaceChildren(
    ...steps.map((s) => {
      const tr = document.createElement("tr");
      tr.dataset.step = s.step;
      cell(tr, s.step);
      cell(tr, s.status);
      cell(tr, String(s.attempts), "num");
      cell(tr, duration(s.startedAt, s.finishedAt), "num");
      cell(tr, s.error, "err");
      return tr;
    }),
  );
}

const isEntered = (t) => /Entered$/.test(t);
const isError = (t) => /TaskFailed|TimedOut|Caught/.test(t);

/// What the execution did, for `mark`; without one, what the order's steps say.
function marksOf(execution, steps) {
  const marks = { visited: new Set(), errored: new Set(), taken: new Set(), current: null, failed: null, waiting: false };
  if (!execution) {
    for (const s of steps) {
      marks.visited.add(s.step);
      if (s.error) marks.errored.add(s.step);
      if (s.status === "RUNNING") marks.current = s.step;
    }
    return marks;
  }
  let previous = null;
  let last = null;
  for (const e of execution.history || []) {
    if (!e.state) continue;
    if (isEntered(e.type)) {
      marks.visited.add(e.state);
      if (previous) marks.taken.add(`${previous}>${e.state}`);
      previous = e.state;
    }
    if (isError(e.type)) marks.errored.add(e.state);
    if (e.state === execution.state) last = e.type;
  }
  if (execution.status === "RUNNING") {
    marks.current = execution.state;
    marks.visited.add(execution.state);
    marks.waiting = /Scheduled|Submitted|Heartbeat/.test(last || "");
  }
  if (execution.status === "FAILED") marks.failed = execution.state;
  return marks;
}

function renderHistory(execution) {
  const entered = new Map();
  const rows = (execution?.history || []).map((e) => {
    const tr = document.createElement("tr");
    tr.dataset.type = e.type;
    let took = millis(e.durationMs);
    if (isEntered(e.type)) entered.set(e.state, e.timestamp);
    else if (!took && /Exited$/.test(e.type)) took = duration(entered.get(e.state), e.timestamp);
    cell(tr, String(e.seq), "num");
    cell(tr, time(e.timestamp));
    cell(tr, e.type);
    cell(tr, e.state);
    cell(tr, e.attempt ? String(e.attempt) : "", "num");
    cell(tr, took, "num");
    cell(tr, [e.error, e.cause].filter(Boolean).join(": "), "err");
    return tr;
  });
  $("history").tBodies[0].replaceChildren(...rows);
}

async function refreshDetail() {
  const id = ui.selected;
  if (!id) return;
  const [summary, order] = await Promise.all([call(`/admin/orders/${id}`), call(`/orders/${id}`)]);
  const execution = summary.executionName
    ? await call(`/executions/${encodeURIComponent(summary.executionName)}`).catch((e) => {
        if (e instanceof ApiError && e.status === 404) return null;
        throw e;
      })
    : null;
  if (ui.selected !== id) return;
  ui.execution = execution;
  $("d-id").textContent = id;
  $("d-status").replaceChildren(statusBadge(order.status));
  $("d-execution").textContent = execution ? `${execution.name} (${execution.status})` : "";
  renderFacts(order, summary);
  renderSteps(order.history || []);
  renderHistory(execution);
  if (!ui.drawn) ui.drawn = render($("graph"), ui.def);
  mark(ui.drawn, marksOf(execution, order.history || []));
  $("cancel").hidden = !CANCELLABLE.includes(order.status) || order.cancellationRequested === true;
  $("redrive").hidden = !(execution && execution.status === "FAILED");
}

function idempotencyKey() {
  const random = globalThis.crypto?.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
  return `console-${random}`;
}

/// Runs an operator's action after `question` is confirmed; its error is shown as text.
async function act(question, action) {
  if (!window.confirm(question)) return;
  try {
    await action();
    report("action");
  } catch (e) {
    report("action", e);
  }
  await tick();
}

async function cancelSelected() {
  const id = ui.selected;
  await act(`Cancel order ${id}? The saga stops and compensates.`, () =>
    call(`/orders/${id}`, {
      method: "PATCH",
      headers: { "Idempotency-Key": idempotencyKey() },
      body: { status: "CANCELLED", reason: "cancelled from the operations console" },
    }),
  );
}

function redrive(name) {
  return act(`Redrive execution ${name} from the state that failed?`, () =>
    call(`/executions/${encodeURIComponent(name)}/redrive`, { method: "POST" }),
  );
}

// ---- the loop ---------------------------------------------------------------------------

let running = false;

async function tick() {
  if (running) return;
  running = true;
  try {
    const jobs = [refreshOrders().then(() => report("orders"), (e) => report("orders", e))];
    if (ui.selected) jobs.push(refreshDetail().then(() => report("detail"), (e) => report("detail", e)));
    if (ui.tick++ % 3 === 0) jobs.push(refreshAttention(act, redrive).then(() => report("attention"), (e) => report("attention", e)));
    await Promise.all(jobs);
    $("live").classList.toggle("stale", ui.errors.has("orders"));
  } finally {
    running = false;
  }
}

let timer = null;

function start() {
  $("token-form").hidden = true;
  $("main").hidden = false;
  $("forget-token").hidden = !token();
  report("token");
  const linked = /^#order\/([0-9a-f-]{36})$/.exec(location.hash);
  if (linked) openOrder(linked[1]);
  tick();
  if (!timer) timer = setInterval(tick, 1000);
}

async function init() {
  $("status-filter").addEventListener("change", filtersChanged);
  $("customer-filter").addEventListener("input", filtersChanged);
  $("more").addEventListener("click", () => loadOlder().catch((e) => report("orders", e)));
  $("close").addEventListener("click", closeOrder);
  $("cancel").addEventListener("click", cancelSelected);
  $("redrive").addEventListener("click", () => ui.execution && redrive(ui.execution.name));
  $("forget-token").addEventListener("click", () => {
    setToken(null);
    askToken();
  });
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    setToken($("token").value.trim());
    $("token").value = "";
    start();
  });
  try {
    const [settings, def] = await Promise.all([call("/console/settings.json"), call("/console/statemachine.json")]);
    ui.def = def;
    if (settings.auth === "bearer" && !token()) askToken();
    else start();
  } catch (e) {
    report("start", e);
  }
}

init();
