// The statelab shop page: browse the catalog, change the cart, check out,
// and see which replica served every response (X-Served-By).
"use strict";

const PAGE_SIZE = 20;
const state = { query: "", offset: 0, total: 0 };
const $ = (id) => document.getElementById(id);
const money = (cents) => (cents / 100).toLocaleString(undefined, { style: "currency", currency: "USD" });

// api calls the cart service and records who served the response. It returns
// the decoded JSON body, or throws an Error carrying the API's message.
async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, opts);
  } catch (e) {
    logResponse(method, path, "network error", "", true);
    throw new Error("The shop is unreachable: " + e.message);
  }
  const servedBy = resp.headers.get("X-Served-By") || "?";
  $("served-by").textContent = servedBy;
  logResponse(method, path, resp.status, servedBy, !resp.ok);
  let data = null;
  try { data = await resp.json(); } catch (e) { /* not JSON: handled below */ }
  if (!resp.ok) {
    const msg = data && data.error ? data.error.message : resp.status + " " + resp.statusText;
    throw new Error(msg);
  }
  return data;
}

function logResponse(method, path, status, servedBy, bad) {
  const li = document.createElement("li");
  li.textContent = `${method} ${path} → ${status}${servedBy ? " by " + servedBy : ""}`;
  if (bad) li.className = "bad";
  const log = $("log");
  log.prepend(li);
  while (log.children.length > 8) log.lastChild.remove();
}

function say(text, kind) {
  const m = $("message");
  m.textContent = text;
  m.className = kind || "";
}

async function loadCatalog() {
  const params = new URLSearchParams({ q: state.query, offset: state.offset, limit: PAGE_SIZE });
  try {
    const data = await api("GET", "/api/catalog?" + params);
    state.total = data.total;
    renderCatalog(data.products);
  } catch (e) {
    say(e.message, "error");
  }
}

function renderCatalog(products) {
  const body = $("products");
  body.replaceChildren();
  for (const p of products) {
    const tr = document.createElement("tr");
    const add = document.createElement("button");
    add.type = "button";
    add.textContent = "Add";
    add.setAttribute("aria-label", `Add ${p.name} to cart`);
    add.addEventListener("click", () => change("POST", "/api/cart/items", { sku: p.sku, qty: 1 }, `Added ${p.name}.`));
    tr.append(cell(p.sku), cell(p.name), cell(money(p.price_cents), "num"), cell(add));
    body.append(tr);
  }
  const pages = Math.max(1, Math.ceil(state.total / PAGE_SIZE));
  const page = Math.floor(state.offset / PAGE_SIZE) + 1;
  $("page-info").textContent = state.total === 0 ? "No products match." : `Page ${page} of ${pages} (${state.total} products)`;
  $("catalog-caption").textContent = state.query ? `Products matching “${state.query}”` : "All products";
  $("prev").disabled = state.offset === 0;
  $("next").disabled = state.offset + PAGE_SIZE >= state.total;
}

function cell(content, cls) {
  const td = document.createElement("td");
  if (typeof content === "string") td.textContent = content; else td.append(content);
  if (cls) td.className = cls;
  return td;
}

function renderCart(cart) {
  const body = $("cart-lines");
  body.replaceChildren();
  for (const item of cart.items) {
    const tr = document.createElement("tr");
    const qty = document.createElement("input");
    qty.type = "number";
    qty.min = "0";
    qty.max = "99";
    qty.value = item.qty;
    qty.setAttribute("aria-label", `Quantity of ${item.name}`);
    qty.addEventListener("change", () => {
      const n = Number(qty.value);
      if (!Number.isInteger(n) || n < 0 || n > 99) {
        say("Quantity must be a whole number from 0 to 99.", "error");
        qty.value = item.qty;
        return;
      }
      change("PATCH", "/api/cart/items/" + encodeURIComponent(item.sku), { qty: n }, n === 0 ? `Removed ${item.name}.` : `${item.name}: quantity ${n}.`);
    });
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", `Remove ${item.name} from cart`);
    remove.addEventListener("click", () => change("DELETE", "/api/cart/items/" + encodeURIComponent(item.sku), undefined, `Removed ${item.name}.`));
    tr.append(cell(item.name), cell(qty), cell(money(item.price_cents * item.qty), "num"), cell(remove));
    body.append(tr);
  }
  const empty = cart.items.length === 0;
  $("cart-table").hidden = empty;
  $("cart-empty").hidden = !empty;
  $("checkout").disabled = empty;
  $("cart-total").textContent = money(cart.total_cents);
}

async function loadCart() {
  try {
    renderCart(await api("GET", "/api/cart"));
  } catch (e) {
    say(e.message, "error");
  }
}

async function change(method, path, body, done) {
  try {
    renderCart(await api(method, path, body));
    say(done, "ok");
  } catch (e) {
    say(e.message, "error");
    loadCart();
  }
}

async function checkout() {
  try {
    const order = await api("POST", "/api/cart/checkout");
    say(`Order ${order.order_id} placed: ${money(order.total_cents)} including tax and shipping.`, "ok");
  } catch (e) {
    say(e.message, "error");
  }
  loadCart();
}

document.addEventListener("DOMContentLoaded", () => {
  $("search-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.query = $("search").value.trim();
    state.offset = 0;
    loadCatalog();
  });
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE_SIZE); loadCatalog(); });
  $("next").addEventListener("click", () => { state.offset += PAGE_SIZE; loadCatalog(); });
  $("checkout").addEventListener("click", checkout);
  $("reload").addEventListener("click", loadCart);
  loadCatalog();
  loadCart();
});
