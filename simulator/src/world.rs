//! The simulated shop's world: shoppers with habits, and fraud campaigns on top.

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, LogNormal, Poisson, WeightedIndex};
use shared::{Amount, Customer, DecisionRequest, Device, HistoryRecord, Item, Label, Payment, PaymentMethod, Region};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::params::Params;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
const WEEK: i64 = 7 * DAY;
/// Where stolen goods go: shipping countries of fraud, outside the shop's home markets.
const DROP_COUNTRIES: [&str; 5] = ["GB", "US", "RO", "UA", "NG"];
/// First octets of address blocks abroad (fraud traffic through proxies and hosting).
const FOREIGN_BLOCKS: [u8; 5] = [185, 45, 91, 103, 197];
const DISPOSABLE: [&str; 3] = ["mailinator.com", "yopmail.com", "guerrillamail.com"];

#[derive(Clone)]
struct Card {
    fingerprint: String,
    bin: String,
    last4: String,
    country: String,
}

struct Shopper {
    id: String,
    email: String,
    country: String,
    /// `None` for a guest checkout (no account).
    created_ms: Option<i64>,
    arrival_ms: i64,
    cards: Vec<Card>,
    devices: Vec<String>,
    ip: String,
    rate_per_week: f64,
}

struct Event {
    at_ms: i64,
    customer_id: String,
    email: String,
    /// `None` for a guest checkout (no account).
    created_ms: Option<i64>,
    card: Card,
    ip: String,
    device: String,
    shipping: String,
    billing: String,
    items: Vec<Item>,
    label: Label,
    scenario: Option<&'static str>,
}

pub struct World<'p> {
    p: &'p Params,
    start_ms: i64,
    end_ms: i64,
    countries: Vec<String>,
    country_weights: WeightedIndex<f64>,
    category_weights: WeightedIndex<f64>,
    hour_weights: WeightedIndex<f64>,
    shoppers: Vec<Shopper>,
    events: Vec<Event>,
    serial: u64,
}

// === impl World ===

impl<'p> World<'p> {
    pub fn new(p: &'p Params, rng: &mut ChaCha8Rng) -> anyhow::Result<World<'p>> {
        let start = OffsetDateTime::parse(&p.start, &Rfc3339)?;
        let start_ms = (start.unix_timestamp_nanos() / 1_000_000) as i64;
        let end_ms = start_ms + i64::from(p.weeks) * WEEK;
        let countries: Vec<String> = p.customers.countries.keys().cloned().collect();
        let mut world = World {
            p,
            start_ms,
            end_ms,
            country_weights: WeightedIndex::new(p.customers.countries.values().copied())?,
            countries,
            category_weights: WeightedIndex::new(p.categories.iter().map(|c| c.weight))?,
            hour_weights: WeightedIndex::new(p.rhythm.hour_weights)?,
            shoppers: Vec::new(),
            events: Vec::new(),
            serial: 0,
        };
        let c = &p.customers;
        for _ in 0..c.initial {
            let age = i64::from(rng.gen_range(c.account_age_days[0]..=c.account_age_days[1])) * DAY;
            world.add_shopper(rng, start_ms - age, start_ms);
        }
        let new_shoppers = (c.new_per_day * 7.0 * f64::from(p.weeks)).round() as u64;
        for _ in 0..new_shoppers {
            let arrival = rng.gen_range(start_ms..end_ms);
            world.add_shopper(rng, arrival, arrival);
        }
        Ok(world)
    }

    /// Every legitimate purchase of every shopper, then label noise.
    pub fn shoppers(&mut self, rng: &mut ChaCha8Rng) {
        let c = &self.p.customers;
        for i in 0..self.shoppers.len() {
            let s = &self.shoppers[i];
            let weeks = (self.end_ms - s.arrival_ms) as f64 / WEEK as f64;
            let mean = s.rate_per_week * weeks;
            let n = if mean > 0.0 {
                Poisson::new(mean).map_or(0.0, |d| d.sample(rng)) as u32
            } else {
                0
            };
            let signs_up_to_buy = s.arrival_ms > self.start_ms && rng.gen_bool(c.first_purchase_at_signup);
            for k in 0..n + u32::from(signs_up_to_buy) {
                let s = &self.shoppers[i];
                let at = if k == n {
                    (s.arrival_ms + rng.gen_range(MINUTE..20 * MINUTE)).min(self.end_ms - 1)
                } else {
                    self.rhythmic_time(rng, s.arrival_ms, self.end_ms)
                };
                let card = s.cards.choose(rng).cloned().unwrap_or_else(|| s.cards[0].clone());
                let device = if rng.gen_bool(c.new_device_share) {
                    token(rng, "dev")
                } else {
                    pick(rng, &s.devices)
                };
                let shipping = if rng.gen_bool(c.ship_abroad_share) {
                    self.other_country(rng, &s.country)
                } else {
                    s.country.clone()
                };
                let items = self.basket(rng);
                let event = Event {
                    at_ms: at,
                    customer_id: s.id.clone(),
                    email: s.email.clone(),
                    created_ms: s.created_ms,
                    card,
                    ip: s.ip.clone(),
                    device,
                    shipping,
                    billing: s.country.clone(),
                    items,
                    label: Label::Legitimate,
                    scenario: None,
                };
                self.events.push(event);
            }
        }
        let noise = (self.events.len() as f64 * self.p.fraud.look_alike_share).round() as usize;
        for _ in 0..noise {
            let i = rng.gen_range(0..self.events.len());
            self.events[i].label = Label::Fraud;
            self.events[i].scenario = Some("look_alike");
        }
    }

    /// The fraud campaigns, each tagged with its scenario.
    pub fn fraud(&mut self, rng: &mut ChaCha8Rng) {
        let f = self.p.fraud.clone();
        let weeks = f64::from(self.p.weeks);
        for _ in 0..(f.card_testing.campaigns_per_week * weeks).round() as u32 {
            let ct = &f.card_testing;
            let t0 = rng.gen_range(self.start_ms..self.end_ms);
            let (account, device, ip) = (
                self.fraud_account(rng, t0, true),
                token(rng, "dev"),
                self.foreign_ip(rng),
            );
            let span = i64::from(rng.gen_range(ct.minutes[0]..=ct.minutes[1])) * MINUTE;
            for _ in 0..rng.gen_range(ct.cards[0]..=ct.cards[1]) {
                let card = self.new_card(rng, &account.country, None);
                let amount = rng.gen_range(ct.amount_minor[0]..=ct.amount_minor[1]);
                let at = t0 + rng.gen_range(0..span.max(1));
                self.push_fraud(&account, at, card, &ip, &device, None, amount, "card_testing");
            }
        }
        for (spree, scenario) in [
            (&f.stolen_card_spree, "stolen_card_spree"),
            (&f.account_takeover, "account_takeover"),
        ] {
            for _ in 0..(spree.campaigns_per_week * weeks).round() as u32 {
                let t0 = rng.gen_range(self.start_ms..self.end_ms);
                let victim = rng.gen_range(0..self.shoppers.len());
                let card = pick(rng, &self.shoppers[victim].cards);
                // A spree uses the card on a fresh account; a takeover uses the victim's own.
                let account = if scenario == "account_takeover" {
                    self.identity(victim)
                } else {
                    self.fraud_account(rng, t0, false)
                };
                let (device, ip) = (token(rng, "dev"), self.foreign_ip(rng));
                let drop = DROP_COUNTRIES.choose(rng).copied().unwrap_or("GB").to_owned();
                let span = i64::from(rng.gen_range(spree.hours[0]..=spree.hours[1])) * HOUR;
                for _ in 0..rng.gen_range(spree.purchases[0]..=spree.purchases[1]) {
                    let amount = lognormal(rng, spree.amount_median_minor, 0.5);
                    let at = t0 + rng.gen_range(0..span.max(1));
                    self.push_fraud(&account, at, card.clone(), &ip, &device, Some(&drop), amount, scenario);
                }
            }
        }
        for _ in 0..(f.bin_attack.campaigns_per_week * weeks).round() as u32 {
            let b = &f.bin_attack;
            let t0 = rng.gen_range(self.start_ms..self.end_ms);
            let bin = format!("{:06}", rng.gen_range(400_000..560_000));
            let accounts: Vec<Identity> = (0..3).map(|_| self.fraud_account(rng, t0, true)).collect();
            let devices: Vec<String> = (0..2).map(|_| token(rng, "dev")).collect();
            let ips: Vec<String> = (0..5).map(|_| self.foreign_ip(rng)).collect();
            let span = i64::from(rng.gen_range(b.minutes[0]..=b.minutes[1])) * MINUTE;
            for seq in 0..rng.gen_range(b.attempts[0]..=b.attempts[1]) {
                let account = &accounts[seq as usize % accounts.len()];
                let mut card = self.new_card(rng, &account.country, Some(&bin));
                card.last4 = format!("{:04}", (1000 + seq * 7) % 10_000);
                let amount = rng.gen_range(b.amount_minor[0]..=b.amount_minor[1]);
                let at = t0 + span * i64::from(seq) / i64::from(b.attempts[1].max(1));
                let (ip, device) = (pick(rng, &ips), pick(rng, &devices));
                self.push_fraud(account, at, card, &ip, &device, None, amount, "bin_attack");
            }
        }
        for _ in 0..(f.bust_out.campaigns_per_week * weeks).round() as u32 {
            let b = &f.bust_out;
            let t0 = rng.gen_range(self.start_ms..self.end_ms);
            let account = self.fraud_account(rng, t0, false);
            let card = self.new_card(rng, &account.country, None);
            let (device, ip) = (token(rng, "dev"), self.home_ip(rng, &account.country));
            let warmup = i64::from(rng.gen_range(b.warmup_days[0]..=b.warmup_days[1])) * DAY;
            for _ in 0..rng.gen_range(b.warmup_purchases[0]..=b.warmup_purchases[1]) {
                let at = t0 + rng.gen_range(0..warmup);
                let mut e = self.event(
                    &account,
                    at,
                    card.clone(),
                    &ip,
                    &device,
                    None,
                    lognormal(rng, 3000.0, 0.4),
                );
                // The warm-up is paid: it is legitimate by its label, not by intent.
                e.label = Label::Legitimate;
                e.scenario = Some("bust_out_warmup");
                self.events.push(e);
            }
            let burst_cards: Vec<Card> = (0..3).map(|_| self.new_card(rng, &account.country, None)).collect();
            for _ in 0..rng.gen_range(b.burst[0]..=b.burst[1]) {
                let at = t0 + warmup + rng.gen_range(0..HOUR);
                let amount = lognormal(rng, b.amount_median_minor, 0.4);
                let card = pick(rng, &burst_cards);
                self.push_fraud(&account, at, card, &ip, &device, None, amount, "bust_out");
            }
        }
        for _ in 0..(f.repeat_fraudster.campaigns_per_week * weeks).round() as u32 {
            let r = &f.repeat_fraudster;
            let mut at = rng.gen_range(self.start_ms..self.end_ms);
            let account = self.fraud_account(rng, at, false);
            let (device, ip) = (token(rng, "dev"), self.home_ip(rng, &account.country));
            for _ in 0..rng.gen_range(r.visits[0]..=r.visits[1]) {
                if at >= self.end_ms {
                    break;
                }
                let card = self.new_card(rng, &account.country, None);
                let amount = lognormal(rng, r.amount_median_minor, 0.5);
                self.push_fraud(&account, at, card, &ip, &device, None, amount, "repeat_fraudster");
                at += rng.gen_range(i64::from(r.gap_days[0]) * DAY..=i64::from(r.gap_days[1]) * DAY);
            }
        }
    }

    /// Sorted by time (ties in generation order); ids follow that order.
    pub fn into_history(mut self, seed: u64) -> Vec<HistoryRecord> {
        let (start, end) = (self.start_ms, self.end_ms);
        self.events.retain(|e| (start..end).contains(&e.at_ms));
        self.events.sort_by_key(|e| e.at_ms);
        self.events
            .into_iter()
            .enumerate()
            .map(|(n, e)| e.into_record(format!("sim-{seed}-{n}")))
            .collect()
    }

    // --- building blocks ---

    fn add_shopper(&mut self, rng: &mut ChaCha8Rng, created_ms: i64, arrival_ms: i64) {
        let c = &self.p.customers;
        let country = self.countries[self.country_weights.sample(rng)].clone();
        let n = self.shoppers.len();
        let domain = pick(rng, &c.email_domains);
        let cards = (0..rng.gen_range(c.cards[0]..=c.cards[1]))
            .map(|_| self.new_card(rng, &country, None))
            .collect();
        let devices = (0..rng.gen_range(c.devices[0]..=c.devices[1]))
            .map(|_| token(rng, "dev"))
            .collect();
        let rate = Exp::new(1.0 / c.purchases_per_week).map_or(c.purchases_per_week, |d| d.sample(rng));
        let ip = self.home_ip(rng, &country);
        self.shoppers.push(Shopper {
            id: format!("cus_{n:06}"),
            email: format!("shopper{n}@{domain}"),
            country,
            created_ms: (!rng.gen_bool(c.guest_share)).then_some(created_ms),
            arrival_ms,
            cards,
            devices,
            ip,
            rate_per_week: rate,
        });
    }

    fn identity(&self, shopper: usize) -> Identity {
        let s = &self.shoppers[shopper];
        Identity {
            id: s.id.clone(),
            email: s.email.clone(),
            created_ms: s.created_ms,
            country: s.country.clone(),
        }
    }

    /// A fresh account opened shortly before `t0`, with a disposable address when `throwaway`.
    fn fraud_account(&mut self, rng: &mut ChaCha8Rng, t0: i64, throwaway: bool) -> Identity {
        self.serial += 1;
        let domain = if throwaway {
            DISPOSABLE.choose(rng).copied().unwrap_or("mailinator.com").to_owned()
        } else {
            pick(rng, &self.p.customers.email_domains)
        };
        let country = self.countries[self.country_weights.sample(rng)].clone();
        Identity {
            id: format!("cus_f{:05}", self.serial),
            email: format!("user{}@{domain}", self.serial),
            created_ms: (!rng.gen_bool(self.p.customers.guest_share)).then(|| t0 - rng.gen_range(MINUTE..HOUR)),
            country,
        }
    }

    fn new_card(&self, rng: &mut ChaCha8Rng, home: &str, bin: Option<&str>) -> Card {
        let country = if rng.gen_bool(0.95) {
            home.to_owned()
        } else {
            self.other_country(rng, home)
        };
        Card {
            fingerprint: token(rng, "fp"),
            bin: bin.map_or_else(|| format!("{:06}", rng.gen_range(400_000..560_000)), str::to_owned),
            last4: format!("{:04}", rng.gen_range(0..10_000)),
            country,
        }
    }

    fn home_ip(&self, rng: &mut ChaCha8Rng, country: &str) -> String {
        let first = 80 + self.countries.iter().position(|c| c == country).unwrap_or(0) as u8 * 3;
        format!(
            "{first}.{}.{}.{}",
            rng.gen_range(0..=255),
            rng.gen_range(0..=255),
            rng.gen_range(1..=254)
        )
    }

    fn foreign_ip(&self, rng: &mut ChaCha8Rng) -> String {
        let first = FOREIGN_BLOCKS.choose(rng).copied().unwrap_or(185);
        format!(
            "{first}.{}.{}.{}",
            rng.gen_range(0..=255),
            rng.gen_range(0..=255),
            rng.gen_range(1..=254)
        )
    }

    fn other_country(&self, rng: &mut ChaCha8Rng, home: &str) -> String {
        let others: Vec<&String> = self.countries.iter().filter(|c| *c != home).collect();
        others.choose(rng).map_or_else(|| home.to_owned(), |c| (*c).clone())
    }

    /// A time in [from, to) following the daily and weekly rhythm.
    fn rhythmic_time(&self, rng: &mut ChaCha8Rng, from: i64, to: i64) -> i64 {
        let max_factor = self.p.rhythm.weekend_factor.max(1.0);
        for _ in 0..64 {
            let day = rng.gen_range(from.div_euclid(DAY)..=(to - 1).div_euclid(DAY));
            // 1970-01-01 was a Thursday: day 2 and 3 of the week (from Thursday) are Saturday, Sunday.
            let weekend = matches!((day + 3).rem_euclid(7), 5 | 6);
            let factor = if weekend { self.p.rhythm.weekend_factor } else { 1.0 };
            if !rng.gen_bool((factor / max_factor).clamp(0.0, 1.0)) {
                continue;
            }
            let at = day * DAY + self.hour_weights.sample(rng) as i64 * HOUR + rng.gen_range(0..HOUR);
            if (from..to).contains(&at) {
                return at;
            }
        }
        rng.gen_range(from..to)
    }

    /// One to three items of one category, the amount log-normal around its median.
    fn basket(&self, rng: &mut ChaCha8Rng) -> Vec<Item> {
        let category = &self.p.categories[self.category_weights.sample(rng)];
        let n = rng.gen_range(1..=3u32);
        let total = lognormal(rng, category.median_minor, category.sigma);
        let each = (total / i64::from(n)).max(1);
        (0..n)
            .map(|i| Item {
                sku: format!("sku-{}-{}", category.name, rng.gen_range(1..=200)),
                quantity: 1,
                unit_price_minor: if i == 0 { total - each * i64::from(n - 1) } else { each },
            })
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        who: &Identity,
        at: i64,
        card: Card,
        ip: &str,
        device: &str,
        ship: Option<&str>,
        amount: i64,
    ) -> Event {
        Event {
            at_ms: at,
            customer_id: who.id.clone(),
            email: who.email.clone(),
            created_ms: who.created_ms,
            card,
            ip: ip.to_owned(),
            device: device.to_owned(),
            shipping: ship.map_or_else(|| who.country.clone(), str::to_owned),
            billing: who.country.clone(),
            items: Vec::new(),
            label: Label::Legitimate,
            scenario: None,
        }
        .with_amount(amount)
    }

    #[allow(clippy::too_many_arguments)]
    fn push_fraud(
        &mut self,
        who: &Identity,
        at: i64,
        card: Card,
        ip: &str,
        device: &str,
        ship: Option<&str>,
        amount: i64,
        scenario: &'static str,
    ) {
        let mut e = self.event(who, at, card, ip, device, ship, amount);
        e.label = Label::Fraud;
        e.scenario = Some(scenario);
        self.events.push(e);
    }
}

struct Identity {
    id: String,
    email: String,
    /// `None` for a guest checkout (no account).
    created_ms: Option<i64>,
    country: String,
}

// === impl Event ===

impl Event {
    fn with_amount(mut self, amount: i64) -> Event {
        self.items = vec![Item {
            sku: "sku-any".into(),
            quantity: 1,
            unit_price_minor: amount.max(1),
        }];
        self
    }

    fn into_record(self, transaction_id: String) -> HistoryRecord {
        let amount: i64 = self
            .items
            .iter()
            .map(|i| i.unit_price_minor * i64::from(i.quantity))
            .sum();
        HistoryRecord {
            request: DecisionRequest {
                transaction_id,
                occurred_at: Some(rfc3339(self.at_ms)),
                amount: Amount {
                    value_minor: amount,
                    currency: "EUR".into(),
                },
                customer: Customer {
                    id: self.customer_id,
                    email: Some(self.email),
                    account_created_at: self.created_ms.map(rfc3339),
                },
                payment: Payment {
                    method: Some(PaymentMethod::Card),
                    card_fingerprint: Some(self.card.fingerprint),
                    bin: Some(self.card.bin),
                    last4: Some(self.card.last4),
                    card_country: Some(self.card.country),
                },
                device: Some(Device {
                    ip: Some(self.ip),
                    id: Some(self.device),
                    user_agent: None,
                }),
                shipping: Some(Region {
                    country: Some(self.shipping),
                }),
                billing: Some(Region {
                    country: Some(self.billing),
                }),
                items: self.items,
                metadata: Default::default(),
            },
            label: Some(self.label),
            scenario: self.scenario.map(str::to_owned),
            labelled_at: None,
            label_source: None,
            outcomes: Vec::new(),
        }
    }
}

/// An opaque gateway-style token: never digits only, so never mistaken for a card number.
fn token(rng: &mut ChaCha8Rng, kind: &str) -> String {
    format!("{kind}_{:012x}", rng.r#gen::<u64>() & 0xffff_ffff_ffff)
}

fn pick<T: Clone>(rng: &mut ChaCha8Rng, items: &[T]) -> T {
    items[rng.gen_range(0..items.len())].clone()
}

fn lognormal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> i64 {
    LogNormal::new(median.ln(), sigma)
        .map_or(median, |d| d.sample(rng))
        .round()
        .max(1.0) as i64
}

/// RFC 3339 in UTC, always with milliseconds, so the history also sorts as text.
fn rfc3339(ms: i64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_default()
}
