// k6 shopper journeys against the shop (`make loadtest`), with the risk sidecar deciding
// every checkout. Two kinds of visitor, each from an address of its own (the shop
// trusts 127.0.0.1's X-Forwarded-For, SHOP__SERVER__TRUSTED_PROXIES):
// - shoppers (SHOPPERS_PER_SECOND): log in to an account made before the run, search,
//   look at products, fill the cart and pay with their own card on their own device;
// - card testers (TESTERS_PER_SECOND): one device and one address per tester, a new
//   card for a cheap item each time; challenged, they read the one-time code from the
//   development mailbox and enter it.
//   k6 run -e SHOP_URL=http://127.0.0.1:8080 -e ACCOUNTS=2000 loadtest/journey.js
import http from 'k6/http';
import { check, fail } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import exec from 'k6/execution';

const SHOP_URL = __ENV.SHOP_URL || 'http://127.0.0.1:8080';
const DURATION = __ENV.DURATION || '90s';
const ACCOUNTS = Number(__ENV.ACCOUNTS || 2000);
const TESTERS = Number(__ENV.TESTERS || 10);
const PASSWORD = __ENV.PASSWORD || 'k6-load-password-1';
const OUT = __ENV.SUMMARY_DIR || '.';

const orders = {
  paid: new Counter('orders_paid'),
  awaiting_verification: new Counter('orders_challenged'),
  in_review: new Counter('orders_in_review'),
  rejected: new Counter('orders_rejected'),
};
const verified = new Counter('orders_verified');
// Testers' orders challenged, held or rejected: which one a tester's second card gets is
// the model's, and it moves with features such as hour_of_day (at 03:00 UTC: blocked).
const steppedUp = new Counter('tester_orders_stepped_up');
const journey = new Trend('journey_duration', true);

export const options = {
  scenarios: {
    shoppers: {
      executor: 'constant-arrival-rate', rate: Number(__ENV.SHOPPERS_PER_SECOND || 8), timeUnit: '1s',
      duration: DURATION, preAllocatedVUs: 20, maxVUs: 100, exec: 'shopper',
    },
    card_testers: {
      executor: 'constant-arrival-rate', rate: Number(__ENV.TESTERS_PER_SECOND || 1), timeUnit: '1s',
      duration: DURATION, preAllocatedVUs: TESTERS, maxVUs: TESTERS, exec: 'cardTester',
    },
  },
  summaryTrendStats: ['med', 'p(95)', 'p(99)', 'max'],
  thresholds: {
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
    // Per request (each also named in the summary): what a shopper notices, on this
    // machine with k6 sharing its two cores. Log-in is an argon2id hash.
    'http_req_duration{name:POST /api/auth/login}': ['p(95)<500'],
    'http_req_duration{name:GET /api/products}': ['p(95)<300'],
    'http_req_duration{name:GET /api/products/{sku}}': ['p(95)<300'],
    'http_req_duration{name:PUT /api/cart/items/{sku}}': ['p(95)<300'],
    'http_req_duration{name:GET /api/cart}': ['p(95)<300'],
    'http_req_duration{name:POST /api/checkout}': ['p(95)<1000'],
    'http_req_duration{name:GET /dev/mailbox}': ['p(95)<300'],
    'http_req_duration{name:POST /api/orders/{id}/verify}': ['p(95)<1000'],
    // Card testing is stepped up; every challenged order that got its code is paid (the
    // 'verified and paid' check; the browser test always takes a challenge to payment).
    tester_orders_stepped_up: ['count>0'],
  },
};

// Luhn-valid numbers on the sandbox's test BIN 424242, distinct per n.
function card(n) {
  const body = `424242${String(1e9 + n).slice(-9)}`;
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = Number(body[body.length - 1 - i]);
    if (i % 2 === 0) { d *= 2; if (d > 9) d -= 9; }
    sum += d;
  }
  return body + String((10 - (sum % 10)) % 10);
}

// Each visitor its own address, as a proxy in front of the shop would say.
function address(n) {
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

function headers(visitor, token, extra) {
  const h = { 'Content-Type': 'application/json', 'X-Forwarded-For': address(visitor.n) };
  if (token) h.Authorization = `Bearer ${token}`;
  return Object.assign(h, extra || {});
}

function call(method, path, visitor, token, body, name, extra) {
  const res = http.request(method, `${SHOP_URL}${path}`, body === undefined ? null : JSON.stringify(body), {
    headers: headers(visitor, token, extra),
    tags: { name: name || `${method} ${path}` },
  });
  return res;
}

function logIn(visitor) {
  const res = call('POST', '/api/auth/login', visitor, null, { email: visitor.email, password: PASSWORD });
  if (!check(res, { 'logged in': (r) => r.status === 200 })) fail(`log-in of ${visitor.email}: ${res.status} ${res.body}`);
  return res.json('access_token');
}

export function setup() {
  const res = http.get(`${SHOP_URL}/api/products?per_page=50`);
  if (res.status !== 200) fail(`the catalogue: ${res.status}`);
  const products = res.json('products').filter((p) => p.stock > 1000);
  if (products.length === 0) fail('no product in stock: make loadtest stocks the catalogue up');
  return {
    products: products.map((p) => ({ sku: p.sku, word: p.name.split(/\W+/)[0].toLowerCase(), price: p.price_minor })),
    cheapest: products.reduce((a, b) => (a.price_minor <= b.price_minor ? a : b)).sku,
  };
}

function pick(list) {
  return list[Math.floor(Math.random() * list.length)];
}

// A challenged order: the code from the mailbox (this shopper's mail for this order).
function verify(visitor, token, order) {
  const mail = http.get(`${SHOP_URL}/dev/mailbox?to=${encodeURIComponent(visitor.email)}`, {
    headers: { 'X-Forwarded-For': address(visitor.n) },
    tags: { name: 'GET /dev/mailbox' },
  });
  // "Enter 123456 at http://…/orders/ord_…/verify to confirm your order." (order ids are
  // letters, digits and _ only, so the id is safe in a pattern).
  const found = String(mail.body).match(new RegExp(`(\\d{6}) at \\S*/orders/${order.order_id}/verify`));
  if (!check(found, { 'code in the mailbox': (f) => f !== null })) {
    console.warn(`no code for ${order.order_id} in the mailbox of ${visitor.email} (${mail.status})`);
    return;
  }
  const res = call('POST', `/api/orders/${order.order_id}/verify`, visitor, token, { code: found[1] }, 'POST /api/orders/{id}/verify');
  if (check(res, { 'verified and paid': (r) => r.status === 200 && r.json('status') === 'paid' })) verified.add(1);
}

function pay(visitor, token, cardNumber, device, key) {
  const res = call('POST', '/api/checkout', visitor, token, {
    card: { number: cardNumber, exp_month: 12, exp_year: 2031, cvc: String(100 + (visitor.n % 900)) },
    shipping_country: 'DE', billing_country: 'DE',
  }, 'POST /api/checkout', { 'Idempotency-Key': key, 'X-Device-Id': device });
  if (!check(res, { 'order placed': (r) => r.status === 201 })) return;
  const order = res.json();
  const counter = orders[order.status];
  if (counter) counter.add(1);
  if (order.status === 'awaiting_verification') verify(visitor, token, order);
  return order.status;
}

export function shopper(data) {
  const started = Date.now();
  // A new account each journey while they last (made before the run, aged a little).
  const n = exec.scenario.iterationInTest % ACCOUNTS;
  const visitor = { n, email: `k6-shopper-${n}@example.com` };
  const token = logIn(visitor);
  const wanted = pick(data.products);
  const found = call('GET', `/api/products?q=${encodeURIComponent(wanted.word)}`, visitor, token, undefined, 'GET /api/products');
  check(found, { 'search answered': (r) => r.status === 200 });
  const lines = 1 + Math.floor(Math.random() * 3);
  for (let i = 0; i < lines; i++) {
    const product = i === 0 ? wanted : pick(data.products);
    call('GET', `/api/products/${product.sku}`, visitor, token, undefined, 'GET /api/products/{sku}');
    const put = call('PUT', `/api/cart/items/${product.sku}`, visitor, token, { quantity: 1 + (i % 2) }, 'PUT /api/cart/items/{sku}');
    check(put, { 'in the cart': (r) => r.status === 200 });
  }
  call('GET', '/api/cart', visitor, token);
  pay(visitor, token, card(n), `k6-device-${n}`, `k6-${exec.scenario.iterationInTest}-${Date.now().toString(36)}`);
  journey.add(Date.now() - started);
}

// One tester per VU: its account, device and address kept, a new card every time.
const tester = { token: null };

export function cardTester(data) {
  // VU ids are unique in the test and below 256 (make loadtest makes k6-tester-0…255).
  const id = exec.vu.idInTest;
  const visitor = { n: ACCOUNTS + id, email: `k6-tester-${id}@example.com` };
  if (!tester.token) tester.token = logIn(visitor);
  const put = call('PUT', `/api/cart/items/${data.cheapest}`, visitor, tester.token, { quantity: 1 }, 'PUT /api/cart/items/{sku}');
  if (put.status === 401) { tester.token = null; return; }
  check(put, { 'in the cart': (r) => r.status === 200 });
  const attempt = exec.scenario.iterationInTest;
  const status = pay(visitor, tester.token, card(500000000 + attempt), `k6-tester-device-${id}`, `k6-t${attempt}-${Date.now().toString(36)}`);
  if (['awaiting_verification', 'in_review', 'rejected'].includes(status)) steppedUp.add(1);
}

export function handleSummary(data) {
  const m = (name) => data.metrics[name];
  const count = (name) => (m(name) ? m(name).values.count : 0);
  const trend = (name) => (m(name) ? {
    p50_ms: m(name).values.med, p95_ms: m(name).values['p(95)'], p99_ms: m(name).values['p(99)'], max_ms: m(name).values.max,
  } : null);
  const requests = {};
  for (const key of Object.keys(data.metrics)) {
    const named = key.match(/^http_req_duration\{name:(.*)\}$/);
    if (named) requests[named[1]] = trend(key);
  }
  const thresholdsOk = Object.values(data.metrics).every((metric) => Object.values(metric.thresholds || {}).every((t) => t.ok));
  const result = {
    script: 'journey',
    duration_s: data.state.testRunDurationMs / 1000,
    journeys: count('iterations'),
    http_reqs: count('http_reqs'),
    http_reqs_per_s: m('http_reqs') ? m('http_reqs').values.rate : 0,
    errors: m('http_req_failed') ? m('http_req_failed').values.passes : 0,
    checks_rate: m('checks') ? m('checks').values.rate : null,
    http: trend('http_req_duration'),
    journey: trend('journey_duration'),
    requests,
    orders: {
      paid: count('orders_paid'),
      challenged: count('orders_challenged'),
      verified: count('orders_verified'),
      in_review: count('orders_in_review'),
      rejected: count('orders_rejected'),
    },
    thresholds_ok: thresholdsOk,
  };
  const o = result.orders;
  const summary = [
    `journey: ${result.journeys} journeys, ${result.http_reqs} requests (${result.http_reqs_per_s.toFixed(1)}/s), ${result.errors} failed, thresholds ${thresholdsOk ? 'kept' : 'BROKEN'}`,
    `  orders: ${o.paid} paid at once, ${o.challenged} challenged (${o.verified} verified and paid), ${o.in_review} in review, ${o.rejected} rejected`,
    `  checkout p50 ${(requests['POST /api/checkout'] || {}).p50_ms} ms, p95 ${(requests['POST /api/checkout'] || {}).p95_ms} ms`,
  ];
  return {
    stdout: `${summary.join('\n')}\n`,
    [`${OUT}/journey.json`]: JSON.stringify(result, null, 2),
  };
}
