// k6 capacity test for the risk sidecar: a constant arrival rate of decision requests
// from the simulator's history (loadtest/mix.lua does the same for wrk).
//   k6 run -e BASE_URL=http://127.0.0.1:8081 -e RATE=2000 -e DURATION=30s loadtest/decisions.js
// TARGET=healthz sends GET /healthz instead: k6's own ceiling and overhead.
import http from 'k6/http';
import { check } from 'k6';
import { SharedArray } from 'k6/data';

// The simulator's history (make simulate): realistic shoppers and fraud campaigns,
// cycled through, each request under a fresh transaction id.
const HISTORY_LINES = new SharedArray('history', () =>
  open(__ENV.HISTORY || '../build/history.jsonl').split('\n').filter((l) => l.length > 0));
const START = Math.floor(Math.random() * 1e6);

const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:8081';
const TARGET = __ENV.TARGET || 'decisions';
// Letters between the numbers: a 13-digit millisecond time alone passes Luhn one time in
// ten, and the sidecar refuses a card-number-like run in any field.
const RUN = `t${Date.now().toString(36)}v${__VU}`;
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
  const line = HISTORY_LINES[(START + counter) % HISTORY_LINES.length];
  return line.replace(/"transaction_id":"[^"]*"/, `"transaction_id":"k6-${RUN}-n${counter}"`);
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
