-- Catalogue and carts.

create table category (
    category_id bigint generated always as identity primary key,
    slug text not null unique,
    name text not null
);

create table product (
    product_id bigint generated always as identity primary key,
    sku text not null unique,
    category_id bigint not null references category,
    name text not null,
    description text not null default '',
    -- Minor units (cents) of `currency`.
    price_minor bigint not null check (price_minor >= 0),
    currency char(3) not null,
    stock integer not null check (stock >= 0),
    created_at timestamptz not null default now()
);
create index product_name_search on product using gin (to_tsvector('simple', name || ' ' || description));

-- A cart belongs to a browser (anonymous, by cookie) or to an account; at log-in the
-- browser's cart is merged into the account's.
create table cart (
    cart_id text primary key,
    account_id bigint unique references account on delete cascade,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table cart_item (
    cart_id text not null references cart on delete cascade,
    product_id bigint not null references product,
    quantity integer not null check (quantity > 0),
    primary key (cart_id, product_id)
);
