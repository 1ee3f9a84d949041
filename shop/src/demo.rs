//! Demo data for `make run`: a catalogue and a few accounts. Idempotent.

use deadpool_postgres::Pool;

use crate::accounts::{Password, PasswordHasher};

/// Every demo account has this password (printed by `make run`).
pub const DEMO_PASSWORD: &str = "demo-password-1";

pub const DEMO_ACCOUNTS: &[(&str, &str)] = &[
    ("ada@example.com", "shopper"),
    ("grace@example.com", "shopper"),
    ("security@example.com", "analyst"),
];

const CATEGORIES: &[(&str, &str)] = &[
    ("electronics", "Electronics"),
    ("books", "Books"),
    ("home", "Home & kitchen"),
    ("fashion", "Fashion"),
    ("grocery", "Grocery"),
    ("gift-cards", "Gift cards"),
];

/// (sku, category, name, description, price in cents, stock)
const PRODUCTS: &[(&str, &str, &str, &str, i64, i32)] = &[
    (
        "EL-1001",
        "electronics",
        "Wireless earbuds",
        "Noise-cancelling, 24 h battery with the case.",
        8999,
        120,
    ),
    (
        "EL-1002",
        "electronics",
        "Mechanical keyboard",
        "Tenkeyless, hot-swappable switches.",
        11900,
        60,
    ),
    (
        "EL-1003",
        "electronics",
        "27-inch monitor",
        "1440p IPS panel, 144 Hz.",
        32900,
        25,
    ),
    (
        "EL-1004",
        "electronics",
        "USB-C charger 65 W",
        "Two ports, folding plug.",
        3999,
        300,
    ),
    (
        "EL-1005",
        "electronics",
        "Smartphone 128 GB",
        "6.1-inch OLED, dual camera.",
        79900,
        40,
    ),
    (
        "EL-1006",
        "electronics",
        "Laptop 14-inch",
        "16 GB memory, 512 GB SSD.",
        129900,
        15,
    ),
    (
        "EL-1007",
        "electronics",
        "E-reader",
        "Glare-free screen, weeks of battery.",
        12999,
        80,
    ),
    (
        "BK-2001",
        "books",
        "The Rust Programming Language",
        "The book, in print.",
        3995,
        200,
    ),
    (
        "BK-2002",
        "books",
        "Designing Data-Intensive Applications",
        "Reliable, scalable, maintainable systems.",
        4499,
        150,
    ),
    (
        "BK-2003",
        "books",
        "Fraud Analytics",
        "Detecting fraud with descriptive, predictive and social network techniques.",
        5200,
        40,
    ),
    (
        "BK-2004",
        "books",
        "A cookbook of soups",
        "Ninety soups for every season.",
        2450,
        90,
    ),
    (
        "BK-2005",
        "books",
        "Children's atlas",
        "Maps and animals of the world.",
        1899,
        70,
    ),
    (
        "BK-2006",
        "books",
        "Crime novel",
        "A detective, a lighthouse and a storm.",
        1299,
        160,
    ),
    (
        "HM-3001",
        "home",
        "Espresso machine",
        "15 bar pump, steam wand.",
        24900,
        30,
    ),
    ("HM-3002", "home", "Chef's knife", "20 cm, stainless steel.", 6900, 100),
    ("HM-3003", "home", "Cast-iron pan", "28 cm, pre-seasoned.", 4500, 75),
    ("HM-3004", "home", "Linen bed sheets", "Double, washed linen.", 8900, 50),
    ("HM-3005", "home", "Desk lamp", "Dimmable LED, warm to cool.", 3499, 140),
    (
        "HM-3006",
        "home",
        "Robot vacuum",
        "Maps rooms, empties itself.",
        44900,
        12,
    ),
    ("FS-4001", "fashion", "Rain jacket", "Waterproof, packable.", 12900, 60),
    (
        "FS-4002",
        "fashion",
        "Running shoes",
        "Cushioned, for long distances.",
        11000,
        80,
    ),
    ("FS-4003", "fashion", "Wool scarf", "Merino, 180 cm.", 3900, 110),
    ("FS-4004", "fashion", "Leather wallet", "Eight card slots.", 4900, 90),
    (
        "FS-4005",
        "fashion",
        "Designer handbag",
        "Calfskin, gold hardware.",
        189000,
        5,
    ),
    ("FS-4006", "fashion", "Sunglasses", "Polarised lenses.", 7900, 65),
    (
        "GR-5001",
        "grocery",
        "Coffee beans 1 kg",
        "Single origin, medium roast.",
        2490,
        400,
    ),
    (
        "GR-5002",
        "grocery",
        "Olive oil 1 l",
        "Extra virgin, cold pressed.",
        1290,
        300,
    ),
    ("GR-5003", "grocery", "Green tea", "Sencha, 100 g.", 890, 250),
    ("GR-5004", "grocery", "Dark chocolate", "72 % cocoa, 100 g.", 349, 600),
    (
        "GR-5005",
        "grocery",
        "Pasta selection",
        "Five shapes, 500 g each.",
        1450,
        200,
    ),
    (
        "GR-5006",
        "grocery",
        "Spice box",
        "Twelve spices from around the world.",
        3200,
        80,
    ),
    (
        "GC-6001",
        "gift-cards",
        "Gift card 25 EUR",
        "Delivered by e-mail.",
        2500,
        10000,
    ),
    (
        "GC-6002",
        "gift-cards",
        "Gift card 50 EUR",
        "Delivered by e-mail.",
        5000,
        10000,
    ),
    (
        "GC-6003",
        "gift-cards",
        "Gift card 100 EUR",
        "Delivered by e-mail.",
        10000,
        10000,
    ),
    (
        "GC-6004",
        "gift-cards",
        "Gift card 250 EUR",
        "Delivered by e-mail.",
        25000,
        10000,
    ),
    (
        "GC-6005",
        "gift-cards",
        "Gift card 500 EUR",
        "Delivered by e-mail.",
        50000,
        10000,
    ),
];

#[tracing::instrument(name = "Load demo data", skip_all)]
pub async fn load(pool: &Pool, hasher: &PasswordHasher) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut client = pool.get().await.context("failed to connect to load demo data")?;
    let tx = client.transaction().await?;
    for (slug, name) in CATEGORIES {
        tx.execute(
            "insert into category (slug, name) values ($1, $2) on conflict (slug) do nothing",
            &[slug, name],
        )
        .await?;
    }
    for (sku, category, name, description, price, stock) in PRODUCTS {
        tx.execute(
            "insert into product (sku, category_id, name, description, price_minor, currency, stock)
             select $1, category_id, $3, $4, $5, 'EUR', $6 from category where slug = $2
             on conflict (sku) do nothing",
            &[sku, category, name, description, price, stock],
        )
        .await?;
    }
    for (email, role) in DEMO_ACCOUNTS {
        let exists = tx.query_opt("select 1 from account where email = $1", &[email]).await?;
        if exists.is_none() {
            let hash = hasher
                .hash(Password::given(DEMO_PASSWORD.to_owned()))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            tx.execute(
                "insert into account (email, password_hash, role) values ($1, $2, $3) on conflict do nothing",
                &[email, &hash, role],
            )
            .await?;
        }
    }
    tx.commit().await?;
    tracing::info!(products = PRODUCTS.len(), "Demo data loaded.");
    Ok(())
}
