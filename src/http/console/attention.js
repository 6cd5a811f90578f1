// The console's "needs attention" lists: failed executions (redrive), the relay's parked
// events (retry) and the subscribers' dead letters (retry). Refreshed every few seconds; the
// actions go through `act`, which asks first and shows the API's error as text.

import { call } from "./api.js";

const time = (iso) => (iso ? iso.replace("T", " ").replace(/\.\d+Z$|Z$/, "") : "");

function row(cells, action) {
  const tr = document.createElement("tr");
  for (const [text, className] of cells) {
    const td = document.createElement("td");
    td.textContent = text ?? "";
    if (className) td.className = className;
    tr.appendChild(td);
  }
  const td = document.createElement("td");
  if (action) td.appendChild(action);
  tr.appendChild(td);
  return tr;
}

function button(text, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.addEventListener("click", onClick);
  return b;
}

function fill(tableId, rows, empty) {
  const body = document.getElementById(tableId).tBodies[0];
  if (rows.length) {
    body.replaceChildren(...rows);
    return;
  }
  const tr = document.createElement("tr");
  const td = document.createElement("td");
  td.colSpan = document.getElementById(tableId).tHead.rows[0].cells.length;
  td.className = "empty";
  td.textContent = empty;
  tr.appendChild(td);
  body.replaceChildren(tr);
}

async function failedExecutions(act, redrive) {
  const { executions } = await call("/executions?status=FAILED");
  fill("failed-executions", executions.map((x) => row([
    [x.name, "mono"],
    [x.state],
    [[x.error, x.cause].filter(Boolean).join(": "), "err"],
    [time(x.updatedAt)],
  ], button("Redrive", () => redrive(x.name)))), "none");
}

async function parkedEvents(act) {
  const { events } = await call("/outbox/parked");
  fill("parked", events.map((p) => row([
    [p.eventId, "mono"],
    [p.eventType],
    [p.orderId, "mono"],
    [p.reason, "err"],
    [time(p.parkedAt)],
  ], button("Retry", () => act(`Let the relay try event ${p.eventId} again?`, () =>
    call(`/outbox/parked/${p.eventId}/retry`, { method: "POST" }))))), "none");
}

async function failedDeliveries(act) {
  const { subscriptions } = await call("/subscriptions");
  const pages = await Promise.all(subscriptions.map((s) =>
    call(`/subscriptions/${s.id}/deliveries?status=failed&limit=100`).then((p) => ({ s, p }))));
  const rows = [];
  for (const { s, p } of pages) {
    for (const d of p.deliveries) {
      rows.push(row([
        [s.url],
        [`${d.eventType} ${d.eventId}`, "mono"],
        [d.orderId, "mono"],
        [[d.lastStatus, d.lastError].filter(Boolean).join(" "), "err"],
        [String(d.attempts), "num"],
      ], button("Retry", () => act(`Send event ${d.eventId} to ${s.url} again?`, () =>
        call(`/subscriptions/${s.id}/deliveries/${d.eventId}/retry`, { method: "POST" })))));
    }
  }
  fill("failed-deliveries", rows, "none");
}

/// Refreshes the three lists; the first error is reported after all were tried.
export async function refreshAttention(act, redrive) {
  const results = await Promise.allSettled([
    failedExecutions(act, redrive),
    parkedEvents(act),
    failedDeliveries(act),
  ]);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
}
