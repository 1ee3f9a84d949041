// k6 capacity test for the risk sidecar: a constant arrival rate of decision requests
// with a realistic mix (see loadtest/mix.lua for the same mix in wrk).
//   k6 run -e BASE_URL=http://127.0.0.1:8081 -e RATE=2000 -e DURATION=30s loadtest/decisions.js
// TARGET=healthz sends GET /healthz instead: k6's own ceiling and overhead.
import http from 'k6/http';
import { check } from 'k6';

const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:8081';
const TARGET = __ENV.TARGET || 'decisions';
const RUN = `${Date.now()}-${__VU}`;
let counter = 0;

export const options = {
  discardResponseBodies: true,
  scenarios: {
    fixed_rate: {
      executor: 'constant-arrival-rate',
      rate: Number(__ENV.RATE || 2000),
      timeUnit: '1s',
      duration: __ENV.DURATION || '30s',
      preAllocatedVUs: Number(__ENV.VUS || 64),
      maxVUs: 400,
    },
  },
  summaryTrendStats: ['med', 'p(99)', 'p(99.9)', 'max'],
  thresholds: {
    // The sidecar's target: p99 at or under 1 ms at 2,000 decisions/s (k6's own cost included).
    'http_req_duration{expected_response:true}': ['p(99)<=1'],
    http_req_failed: ['rate<0.001'],
    dropped_iterations: ['count<1'],
  },
};

function body() {
  counter += 1;
  const c = 1 + Math.floor(Math.random() * 50000);
  let card, device, ip, amount;
  if (Math.random() < 0.05) {
    card = `fp-ring-${1 + Math.floor(Math.random() * 2000)}`;
    device = `dev-ring-${1 + Math.floor(Math.random() * 5)}`;
    ip = `198.51.100.${1 + Math.floor(Math.random() * 20)}`;
    amount = 100 + Math.floor(Math.random() * 400);
  } else {
    card = `fp-${c}-${1 + Math.floor(Math.random() * 2)}`;
    device = `dev-${c}`;
    ip = `203.0.${c % 250}.${c % 200}`;
    amount = Math.floor(Math.exp(6 + Math.random() * 4));
  }
  return JSON.stringify({
    transaction_id: `k6-${RUN}-${counter}`,
    amount: { value_minor: amount, currency: 'EUR' },
    // 85 % of shoppers have an account (its date fixed per shopper); the rest are guests.
    customer: c % 100 < 85
      ? { id: `cus-${c}`, email: `c${c}@example.com`,
          account_created_at: `20${22 + (c % 4)}-${String(1 + (c % 12)).padStart(2, '0')}-${String(1 + (c % 28)).padStart(2, '0')}T10:00:00Z` }
      : { id: `cus-${c}`, email: `c${c}@example.com` },
    payment: { method: 'card', card_fingerprint: card, bin: '411111', last4: '0042', card_country: 'DE' },
    device: { ip, id: device },
    shipping: { country: 'DE' },
    billing: { country: 'DE' },
    items: [{ sku: `sku-${c % 100}`, quantity: 1, unit_price_minor: amount }],
  });
}

export default function () {
  if (TARGET === 'healthz') {
    const res = http.get(`${BASE_URL}/healthz`);
    check(res, { 'status 200': (r) => r.status === 200 });
    return;
  }
  const res = http.post(`${BASE_URL}/v1/decisions`, body(), {
    headers: { 'Content-Type': 'application/json', 'X-Client-Id': 'k6' },
  });
  check(res, { 'status 200': (r) => r.status === 200 });
}
