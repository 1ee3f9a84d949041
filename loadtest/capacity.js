// k6 capacity test for the risk sidecar (`make loadtest`): an open model, the arrival
// rate stepped up (STEPS, STEP_SECONDS each) until a step's p99 breaks P99_MS, its
// errors pass 0.1 % or k6 has to drop arrivals; the test stops there and reports the
// highest rate held. Each step is the simulator's mix with a card-testing burst in its
// middle (ATTACK_SHARE of the step's rate for 4 s: one device and address, a new card
// and account each time).
//   k6 run -e BASE_URL=http://127.0.0.1:8081 -e HISTORY=build/history.jsonl loadtest/capacity.js
import http from 'k6/http';
import { check } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import { SharedArray } from 'k6/data';
import exec from 'k6/execution';

const HISTORY_LINES = new SharedArray('history', () =>
  open(__ENV.HISTORY || '../build/history.jsonl').split('\n').filter((l) => l.length > 0));

const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:8081';
const STEPS = (__ENV.STEPS || '250,500,750,1000,1250,1500,2000,3000,4000').split(',').map(Number);
const STEP_SECONDS = Number(__ENV.STEP_SECONDS || 20);
// The sidecar's decision budget (decision.budget_ms): slower than this, the shop's
// payment code waits on a decision the sidecar itself counts as late.
const P99_MS = Number(__ENV.P99_MS || 10);
const ATTACK_SHARE = Number(__ENV.ATTACK_SHARE || 0.1);
const ATTACK_SECONDS = 4;
const OUT = __ENV.SUMMARY_DIR || '.';
// Before the steps: k6's own ceiling, GET /healthz at this rate for CEILING_SECONDS. What
// k6 and a bare request cost on these cores, told apart from a decision's cost.
const CEILING_RATE = Number(__ENV.CEILING_RATE || 1000);
const CEILING_SECONDS = 10;

const START = Math.floor(Math.random() * 1e6);
let counter = 0;

const outcomes = {
  allow: new Counter('decisions_allow'),
  challenge: new Counter('decisions_challenge'),
  block: new Counter('decisions_block'),
};
const degraded = new Counter('decisions_degraded');
const attackStopped = new Rate('attack_stopped');
const healthz = new Trend('healthz_duration', true);

function stepScenarios() {
  const scenarios = {
    ceiling: {
      executor: 'constant-arrival-rate', rate: CEILING_RATE, timeUnit: '1s', duration: `${CEILING_SECONDS}s`,
      gracefulStop: '1s', exec: 'ceiling', preAllocatedVUs: 10, maxVUs: 50,
    },
  };
  const thresholds = {};
  const offset = CEILING_SECONDS + 1;
  STEPS.forEach((rate, i) => {
    const step = String(rate);
    const vus = { preAllocatedVUs: Math.max(10, Math.ceil(rate / 200)), maxVUs: Math.max(50, Math.ceil(rate / 20)) };
    scenarios[`step_${step}`] = {
      executor: 'constant-arrival-rate', rate, timeUnit: '1s', duration: `${STEP_SECONDS}s`,
      startTime: `${offset + i * STEP_SECONDS}s`, gracefulStop: '2s', exec: 'mix', tags: { step }, ...vus,
    };
    scenarios[`attack_${step}`] = {
      executor: 'constant-arrival-rate', rate: Math.max(1, Math.round(rate * ATTACK_SHARE)), timeUnit: '1s',
      duration: `${ATTACK_SECONDS}s`, startTime: `${offset + i * STEP_SECONDS + (STEP_SECONDS - ATTACK_SECONDS) / 2}s`,
      gracefulStop: '2s', exec: 'attack', tags: { step },
      preAllocatedVUs: 5, maxVUs: Math.max(20, Math.ceil(rate / 100)),
    };
    // Evaluated while the step runs: the first one broken ends the test.
    thresholds[`http_req_duration{step:${step}}`] = [{ threshold: `p(99)<=${P99_MS}`, abortOnFail: true, delayAbortEval: '5s' }];
    thresholds[`http_req_failed{step:${step}}`] = [{ threshold: 'rate<0.001', abortOnFail: true, delayAbortEval: '5s' }];
    thresholds[`dropped_iterations{step:${step}}`] = [{ threshold: `count<=${Math.ceil(rate * STEP_SECONDS * 0.001)}`, abortOnFail: true }];
  });
  return { scenarios, thresholds };
}

const { scenarios, thresholds } = stepScenarios();

export const options = {
  scenarios,
  thresholds: {
    ...thresholds,
    // Every burst's cards meet a challenge or a block once the device's counts climb.
    attack_stopped: ['rate>0.5'],
  },
  summaryTrendStats: ['med', 'p(95)', 'p(99)', 'max'],
};

// One id for the whole run, in letters and digits: a 13-digit millisecond time alone
// passes Luhn one time in ten, and the sidecar refuses a card-number-like run anywhere.
export function setup() {
  return { run: `t${Date.now().toString(36)}` };
}

function post(body, attack) {
  const res = http.post(`${BASE_URL}/v1/decisions`, body, {
    headers: { 'Content-Type': 'application/json', 'X-Client-Id': 'k6' },
    tags: { traffic: attack ? 'attack' : 'mix' },
  });
  if (!check(res, { 'status 200': (r) => r.status === 200 })) return;
  const answer = res.json();
  const counterOf = outcomes[answer.decision];
  if (counterOf) counterOf.add(1);
  if (answer.degraded && answer.degraded.length > 0) degraded.add(1);
  if (attack) attackStopped.add(answer.decision !== 'allow');
}

export function ceiling() {
  const res = http.get(`${BASE_URL}/healthz`, { tags: { traffic: 'ceiling' } });
  if (check(res, { 'healthz 200': (r) => r.status === 200 })) healthz.add(res.timings.duration);
}

export function mix(data) {
  counter += 1;
  const line = HISTORY_LINES[(START + counter) % HISTORY_LINES.length];
  post(line.replace(/"transaction_id":"[^"]*"/, `"transaction_id":"k6-${data.run}-v${__VU}n${counter}"`), false);
}

// Card testing: within one burst, one device and one address try a new card (and a new
// account) each time, for a few euros.
export function attack(data) {
  const burst = `${data.run}-${exec.scenario.name}`;
  const n = exec.scenario.iterationInTest;
  post(JSON.stringify({
    transaction_id: `k6-${burst}-n${n}`,
    amount: { value_minor: 100 + (n % 7) * 50, currency: 'EUR' },
    customer: { id: `atk-${burst}-c${n}`, email: `c${n}.${burst}@mailinator.test`, account_created_at: new Date().toISOString() },
    payment: { method: 'card', card_fingerprint: `fp-atk-${burst}-n${n}`, bin: '424242', card_country: 'US' },
    device: { ip: `203.0.113.${(STEPS.indexOf(Number(exec.scenario.name.slice('attack_'.length))) % 250) + 1}`, id: `atk-dev-${burst}` },
    shipping: { country: 'NG' },
    billing: { country: 'US' },
  }), true);
}

function stepRow(data, rate) {
  const m = (name) => data.metrics[`${name}{step:${rate}}`];
  const duration = m('http_req_duration');
  const failed = m('http_req_failed');
  const dropped = m('dropped_iterations');
  const ran = duration && duration.values && duration.values.med !== undefined && failed && failed.values.passes + failed.values.fails > 0;
  if (!ran) return { rate, ran: false };
  const held = [duration, failed, dropped].every((metric) => !metric || Object.values(metric.thresholds || {}).every((t) => t.ok));
  return {
    rate,
    ran: true,
    held,
    requests: failed.values.passes + failed.values.fails,
    errors: failed.values.passes,
    dropped: dropped && dropped.values.count ? dropped.values.count : 0,
    p50_ms: duration.values.med,
    p95_ms: duration.values['p(95)'],
    p99_ms: duration.values['p(99)'],
    max_ms: duration.values.max,
  };
}

export function handleSummary(data) {
  const steps = STEPS.map((rate) => stepRow(data, rate));
  // Held: its thresholds kept, and every lower step's too (a break ends the test).
  let highestHeld = 0;
  for (const s of steps) {
    if (!s.ran || !s.held) break;
    highestHeld = s.rate;
  }
  const count = (name) => (data.metrics[name] ? data.metrics[name].values.count : 0);
  const result = {
    script: 'capacity',
    p99_budget_ms: P99_MS,
    step_seconds: STEP_SECONDS,
    attack_share: ATTACK_SHARE,
    highest_rate_held: highestHeld,
    broke_at: (steps.find((s) => s.ran && !s.held) || {}).rate || null,
    steps,
    decisions: {
      allow: count('decisions_allow'),
      challenge: count('decisions_challenge'),
      block: count('decisions_block'),
      degraded: count('decisions_degraded'),
    },
    attack_stopped_rate: data.metrics.attack_stopped ? data.metrics.attack_stopped.values.rate : null,
    ceiling: data.metrics.healthz_duration ? {
      rate: CEILING_RATE,
      p50_ms: data.metrics.healthz_duration.values.med,
      p95_ms: data.metrics.healthz_duration.values['p(95)'],
      p99_ms: data.metrics.healthz_duration.values['p(99)'],
    } : null,
    http_reqs: count('http_reqs'),
    duration_s: data.state.testRunDurationMs / 1000,
    aborted_by_threshold: steps.some((s) => s.ran && !s.held),
  };
  const lines = [`capacity: highest rate held ${highestHeld}/s (p99 <= ${P99_MS} ms, errors < 0.1 %, no dropped arrivals)`];
  if (result.ceiling) {
    const c = result.ceiling;
    lines.push(`  k6's ceiling, GET /healthz at ${c.rate}/s: p50 ${c.p50_ms.toFixed(2)} ms  p95 ${c.p95_ms.toFixed(2)} ms  p99 ${c.p99_ms.toFixed(2)} ms`);
  }
  for (const s of steps.filter((x) => x.ran)) {
    lines.push(`  ${String(s.rate).padStart(5)}/s  ${s.held ? 'held ' : 'BROKE'}  p50 ${s.p50_ms.toFixed(2)} ms  p95 ${s.p95_ms.toFixed(2)} ms  p99 ${s.p99_ms.toFixed(2)} ms  errors ${s.errors}  dropped ${s.dropped}`);
  }
  return {
    stdout: `${lines.join('\n')}\n`,
    [`${OUT}/capacity.json`]: JSON.stringify(result, null, 2),
  };
}
